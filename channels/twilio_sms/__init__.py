"""Twilio Programmable Messaging: SMS, MMS and WhatsApp in (webhooks) and out (REST API)."""
