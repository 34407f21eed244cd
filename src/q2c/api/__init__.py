"""The HTTP API (``q2c serve``): FastAPI app in ``app``, auth in ``auth``, webhook receivers in
``webhooks``, exception work in ``operations``, problem+json errors in ``problems``.

Access is configured under ``api:`` in q2c.yaml; secrets are named by environment variable::

    api:
      token: {key_env: Q2C_API_SIGNING_KEY, ttl_seconds: 900}   # HS256, >= 32 bytes
      # or: {algorithm: EdDSA, private_key_file: keys/api.pem}  (RS256 too)
      clients:
        - {id: ops-console, secret_env: Q2C_OPS_SECRET, scopes: [operate],
           rate_limit: {requests_per_minute: 600, burst: 60}}
        - {id: crm-relay, secret_env: Q2C_CRM_RELAY_SECRET, scopes: [ingest]}
      external_issuer:            # optional: an identity provider's tokens too
        {issuer: "https://idp.example", jwks_url: "https://idp.example/jwks", audience: q2c}
      webhooks:                   # Stripe systems get /v1/webhooks/<name> from their
        kantata: {kind: kantata, secret_env: KANTATA_RELAY_SECRET}   # webhook_secret_env
        acme: {kind: hmac, secret_env: ACME_WEBHOOK_SECRET, tolerance_seconds: 300}

Auth is on by default: with no clients every /v1 call is 401. ``api: {auth: disabled}`` (local
development only) makes every caller admin, and ``q2c serve`` then binds loopback only.

Scopes: ``read`` (every GET under /v1), ``operate`` (replay, bulk replay, edit-and-replay,
dismiss; holds read), ``ingest`` (POST /v1/events only), ``admin`` (all). Open without a token:
``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, ``/docs`` (no business data) and
``/v1/webhooks/*`` (authenticated by the sender's signature instead).
"""
