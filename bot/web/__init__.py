"""HTTP routers: webhooks, health, agent REST API, console pages."""
