"""Jobs of the marketplaces domain."""

from __future__ import annotations

import procrastinate

blueprint = procrastinate.Blueprint()
