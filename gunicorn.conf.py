"""gunicorn settings read from the project root (``make run``, and any gunicorn started here).

The access log names each request by its path without the query string: links
carry their secrets in the query (password reset, sign-up and email
verification, invitations; a hub's callback carries its code), and a log line
outlives them. Nor is the Referer logged: another site's page address can hold
its own secrets. The request id ties a line to the service's own logs.
"""

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
