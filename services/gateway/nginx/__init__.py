"""The nginx gateway: its configuration template and the renderer that fills it in."""
