"""Jobs of the sync domain."""

from __future__ import annotations

import procrastinate

blueprint = procrastinate.Blueprint()
