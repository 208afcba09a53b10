"""Email channel: inbound SMTP (aiosmtpd), robust MIME parsing, threaded replies via a relay."""
