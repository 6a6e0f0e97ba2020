"""triagebot's service: app factory, settings, channels, conversation flow, web pages."""
