"""An in-memory Stalwart (its JMAP management of domains and DKIM keys) behind httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tenantry.integrations.ports import TenantSpec

BASE = "https://mail.example.test"
API_KEY = "API_dGhpcy1pcy1ub3QtYS1yZWFsLWtleQ"
TENANT = TenantSpec(id="t1", slug="acme", name="Acme", generation=1, mail_domain="acme.test", quota_bytes=1 << 30)


class FakeStalwart:
    """Just enough of Stalwart's JMAP management to drive the adapter, in memory, over MockTransport."""

    def __init__(self) -> None:
        self.domains: dict[str, dict[str, Any]] = {}
        self.dkim: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, str] = {}  # account id -> domain id, to make a domain "linked"
        self.fail_with: httpx.Response | None = None
        self.method_errors: dict[str, str] = {}  # method name -> JMAP error type it answers with
        self.set_error: dict[str, Any] | None = None  # returned for the next x:Domain/set create
        self.before_create: Callable[[], None] | None = None
        self.zone_override: str | None = None
        self.creates = 0
        self.posts: list[list[list[Any]]] = []  # the methodCalls of every API request, in order
        self._next = 0

    def new_id(self) -> str:
        self._next += 1
        return f"i{self._next}"

    def add_domain(self, name: str, **props: Any) -> str:
        domain_id = self.new_id()
        self.domains[domain_id] = {
            "id": domain_id,
            "name": name,
            "aliases": {},
            "isEnabled": True,
            "dkimManagement": {"@type": "Automatic"},
            **props,
        }
        return domain_id

    def add_dkim(self, domain_id: str, stage: str = "active") -> str:
        key_id = self.new_id()
        self.dkim[key_id] = {
            "id": key_id,
            "@type": "Dkim1Ed25519Sha256",
            "domainId": domain_id,
            "selector": f"v1-ed25519-{key_id}",
            "stage": stage,
            "publicKey": "MCowBQYDK2VwAyEA",
        }
        return key_id

    def zone(self, domain: dict[str, Any]) -> str:
        if self.zone_override is not None:
            return self.zone_override
        name = domain["name"]
        lines = [f"{name}. IN MX 10 mx1.{name}.", f'{name}. IN TXT "v=spf1 mx -all"']
        lines += [
            f'{k["selector"]}._domainkey.{name}. IN TXT "v=DKIM1; k=ed25519; h=sha256; p={k["publicKey"]}"'
            for k in self.dkim.values()
            if k["domainId"] == domain["id"]
        ]
        lines.append(f'_dmarc.{name}. IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@{name}"')
        return "\n".join(lines) + "\n"

    # --- transport ---------------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail_with is not None:
            return self.fail_with
        if request.url.path == "/.well-known/jmap":
            return httpx.Response(307, headers={"Location": "/jmap/session"})
        if request.url.path == "/jmap/session":
            return httpx.Response(
                200, json={"apiUrl": f"{BASE}/jmap/", "capabilities": {}, "primaryAccounts": {"urn:stalwart:jmap": "a"}}
            )
        body = json.loads(request.content)
        self.posts.append(body["methodCalls"])
        results: dict[str, Any] = {}
        created: dict[str, str] = {}  # creation id -> id, for "#<creation id>" in a later get's ids
        responses = []
        for name, raw_args, call_id in body["methodCalls"]:
            args = dict(raw_args)
            if name in self.method_errors:
                responses.append(["error", {"type": self.method_errors[name]}, call_id])
                continue
            if "#ids" in args:
                source = results.get(args.pop("#ids")["resultOf"])
                if source is None or "ids" not in source:
                    responses.append(["error", {"type": "invalidResultReference"}, call_id])
                    continue
                args = {**args, "ids": source["ids"]}
            refs = [i[1:] for i in args.get("ids") or [] if i.startswith("#")]
            if any(ref not in created for ref in refs):
                responses.append(["error", {"type": "invalidResultReference"}, call_id])
                continue
            if refs:
                args["ids"] = [created[i[1:]] if i.startswith("#") else i for i in args["ids"]]
            result = self.dispatch(name, args)
            created.update({key: entry["id"] for key, entry in result.get("created", {}).items()})
            results[call_id] = result
            responses.append([name, result, call_id])
        return httpx.Response(200, json={"methodResponses": responses})

    def dispatch(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        store = self.domains if name.startswith("x:Domain/") else self.dkim
        if name.endswith("/query"):
            wanted = args.get("filter", {}).items()
            return {"ids": [i for i, obj in store.items() if all(obj.get(k) == v for k, v in wanted)]}
        if name.endswith("/get"):
            found = [dict(store[i]) for i in args["ids"] if i in store]
            if name == "x:Domain/get" and "dnsZoneFile" in args.get("properties", []):
                found = [{**d, "dnsZoneFile": self.zone(d)} for d in found]
            return {"list": found, "notFound": [i for i in args["ids"] if i not in store]}
        if name == "x:Domain/set" and "create" in args:
            return self.create_domain(args["create"])
        if name == "x:Domain/set" and "update" in args:
            raise AssertionError(f"the adapter updated a domain: {args['update']}")
        return self.destroy(store, name, args["destroy"])

    def create_domain(self, create: dict[str, Any]) -> dict[str, Any]:
        if self.before_create is not None:
            self.before_create()
        ((key, body),) = create.items()
        if self.set_error is not None:
            return {"notCreated": {key: self.set_error}}
        clash = [d for d in self.domains.values() if d["name"] == body["name"]]
        if clash:
            error = {
                "type": "primaryKeyViolation",
                "properties": ["name"],
                "objectId": {"object": "Domain", "id": clash[0]["id"]},
            }
            return {"notCreated": {key: error}}
        self.creates += 1
        domain_id = self.add_domain(body["name"])
        self.domains[domain_id]["description"] = body.get("description")
        return {"created": {key: {"id": domain_id}}}

    def destroy(self, store: dict[str, Any], name: str, ids: list[str]) -> dict[str, Any]:
        destroyed: list[str] = []
        failed: dict[str, Any] = {}
        for object_id in ids:
            linked = [{"object": "Account", "id": a} for a, d in self.accounts.items() if d == object_id]
            if name == "x:Domain/set":
                linked += [
                    {"object": "DkimSignature", "id": k} for k, v in self.dkim.items() if v["domainId"] == object_id
                ]
            if object_id not in store:
                failed[object_id] = {"type": "notFound"}
            elif linked:
                failed[object_id] = {"type": "objectIsLinked", "linkedObjects": linked}
            else:
                del store[object_id]
                destroyed.append(object_id)
        return {"destroyed": destroyed, "notDestroyed": failed}
