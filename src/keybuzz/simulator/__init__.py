"""A local Amazon: LWA, Seller Central consent and the SP-API operations KeyBuzz calls.

Faithful to the official models vendored in ``spapi_models/``. Only base URLs tell it apart
from Amazon. Start it in-process with ``SimulatorServer`` or alone with ``keybuzz simulator``.
"""

from keybuzz.simulator.app import create_app
from keybuzz.simulator.server import SimulatorServer
from keybuzz.simulator.settings import FaultSettings, SimulatorSettings
from keybuzz.simulator.state import SellerSpec, Simulator

__all__ = [
    "FaultSettings",
    "SellerSpec",
    "Simulator",
    "SimulatorServer",
    "SimulatorSettings",
    "create_app",
]
