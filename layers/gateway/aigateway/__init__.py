"""An AI gateway for InsForge-style backends."""
