"""The host's link to boards: transports (virtual, serial), deploy, flash and device discovery."""
