"""`wireproxy ca init [--config FILE] [--cert FILE] [--key FILE] [--force]`: the local CA for the
forward proxy's TLS interception. The key is written 0600; give the certificate to clients."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def add_parser(commands) -> None:
    ca = commands.add_parser("ca", help="the local CA for TLS interception")
    sub = ca.add_subparsers(dest="ca_command", metavar="COMMAND")
    init = sub.add_parser("init", help="create the CA certificate and key")
    init.add_argument("--config", type=Path, help="wireproxy.toml: ca_cert / ca_key of its forward proxy")
    init.add_argument("--cert", type=Path, help="certificate path (default wireproxy-ca.crt)")
    init.add_argument("--key", type=Path, help="private key path (default wireproxy-ca.key, 0600)")
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(run=run_init)


def run_init(args) -> int:
    from ..config import load_config
    from ..http.ca import DEFAULT_CERT, DEFAULT_KEY, CaError, init_ca

    cert, key = args.cert, args.key
    if args.config is not None:
        for listener in load_config(args.config).http:
            if listener.upstream is None:
                cert = cert or listener.ca_cert
                key = key or listener.ca_key
                break
    cert = Path(cert or DEFAULT_CERT)
    key = Path(key or DEFAULT_KEY)
    try:
        init_ca(cert, key, force=args.force)
    except CaError as exc:
        raise UsageError(str(exc)) from None
    print(f"CA certificate: {cert}  (clients trust it: SSL_CERT_FILE={cert} or their own setting)")
    print(f"CA private key: {key}  (0600; keep it on the proxy host only)")
    return 0
