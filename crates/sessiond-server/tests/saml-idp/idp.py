"""A real SAML 2.0 identity provider for sessiond's SAML tests: pysaml2's Server.

It makes its signing key and certificate (and a stranger's, with openssl), writes its metadata
to <dir>/idp-metadata.xml, listens on a free loopback port and prints `ready <port>`.

The service provider's metadata is read from <dir>/sp-metadata.xml at the first sign-in (the
test writes it from sessiond's metadata endpoint once sessiond runs).

GET /sso/redirect?SAMLRequest=…&RelayState=…&user=NAME[&sign=MODE] is the HTTP-Redirect
binding's single sign-on service: it signs NAME in without a password and answers the
HTTP-POST binding's form (SAMLResponse, RelayState) to the request's assertion consumer
service. MODE is what the tests vary:
  assertion  the assertion signed (the default)
  response   only the response signed, not the assertion
  none       nothing signed
  stranger   the assertion signed by a key the service provider does not know
  sha1       the assertion signed with RSA-SHA1 (SHA-256 otherwise)
  audience   the assertion signed, for another service provider's audience
Without `user` it shows a form that asks for one, for a browser.

Usage: python3 idp.py <dir>
"""
import html
import http.server
import os
import subprocess
import sys
import urllib.parse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.saml import AUTHN_PASSWORD
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

ACCOUNTS = {
    "alice": {"uid": ["alice"], "mail": ["alice@example.org"], "displayName": ["Alice Liddell"],
              "groups": ["dev", "ops"]},
    "bob": {"uid": ["bob"], "mail": ["bob@example.org"], "displayName": ["Bob"], "groups": []},
}


def make_key(dir, name):
    key, cert = os.path.join(dir, f"{name}.key"), os.path.join(dir, f"{name}.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return key, cert


def config(dir, base, key, cert, with_sp):
    conf = {
        "entityid": f"{base}/idp",
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": key,
        "cert_file": cert,
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None}},
        }},
    }
    if with_sp:
        conf["metadata"] = {"local": [os.path.join(dir, "sp-metadata.xml")]}
    c = IdPConfig()
    c.load(conf)
    return c


class Idp:
    def __init__(self, dir, base):
        self.dir, self.base = dir, base
        self.key = make_key(dir, "idp")
        self.stranger_key = make_key(dir, "stranger")
        with open(os.path.join(dir, "idp-metadata.xml"), "w") as f:
            f.write(create_metadata_string(None, config=config(dir, base, *self.key, False), valid=48).decode())
        self.servers = None

    def server(self, stranger=False):
        if self.servers is None:
            self.servers = (Server(config=config(self.dir, self.base, *self.key, True)),
                            Server(config=config(self.dir, self.base, *self.stranger_key, True)))
        return self.servers[1 if stranger else 0]

    def sign_in(self, query):
        request = self.server().parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        args = self.server().response_args(request.message, [BINDING_HTTP_POST])
        user, mode = query["user"], query.get("sign", "assertion")
        server = self.server(stranger=mode == "stranger")
        sha1 = mode == "sha1"
        if mode == "audience":
            args["sp_entity_id"] = "https://elsewhere.example/sp"
        response = server.create_authn_response(
            ACCOUNTS.get(user, {"uid": [user]}), userid=user,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=user),
            authn={"class_ref": AUTHN_PASSWORD, "authn_auth": self.base},
            sign_assertion=mode in ("assertion", "stranger", "sha1", "audience"), sign_response=mode == "response",
            sign_alg=SIG_RSA_SHA1 if sha1 else SIG_RSA_SHA256, digest_alg=DIGEST_SHA1 if sha1 else DIGEST_SHA256,
            **{k: v for k, v in args.items() if k != "binding"})
        return server.apply_binding(BINDING_HTTP_POST, str(response), args["destination"],
                                    query.get("RelayState", ""), response=True)


def handler(idp):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body, kind="text/html; charset=utf-8"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path != "/sso/redirect" or "SAMLRequest" not in query:
                return self.answer(404, "not found", "text/plain")
            if "user" not in query:
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                 for k, v in query.items())
                return self.answer(200, '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                                   '<title>Test SAML IdP: sign in</title></head><body><h1>Test SAML IdP</h1>'
                                   f'<form method="get">{hidden}<label for="user">User</label> '
                                   '<input id="user" name="user" autocomplete="off"> '
                                   '<button type="submit">Sign in</button></form></body></html>')
            try:
                binding = idp.sign_in(query)
            except Exception as e:  # the test reads the reason
                return self.answer(400, f"{type(e).__name__}: {e}", "text/plain")
            return self.answer(200, binding["data"])

    return Handler


def main():
    dir = sys.argv[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    server.RequestHandlerClass = handler(Idp(dir, f"http://127.0.0.1:{port}"))
    print(f"ready {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
