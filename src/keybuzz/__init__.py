"""KeyBuzz Orders: marketplace orders beside the helpdesk conversation."""

__version__ = "0.1.0"
