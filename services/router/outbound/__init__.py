"""Outbound messages: webhooks to subscribers, emails and chat messages to people."""
