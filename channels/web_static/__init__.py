"""Static files of the web chat widget (served by channels.webchat; a package so wheels ship them)."""
