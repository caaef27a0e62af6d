"""Run scim2-tester's check_server() against a running grouptalk-scim and print one line per
result plus a closing 'N passed, N failed' line. Exit 1 unless every result is SUCCESS.

Usage: conformance.py BASE_URL TOKEN CA_CERT
"""
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> int:
    base, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
    http = Client(base_url=base.rstrip("/") + "/", headers={"Authorization": f"Bearer {token}"}, verify=ca)
    client = SyncSCIMClient(http)
    results = check_server(client)
    passed = failed = 0
    for r in results:
        status = getattr(r.status, "name", str(r.status))
        rt = getattr(r, "resource_type", None) or "-"
        line = f"{status:<8} {rt:<6} {r.title}"
        if status == "SUCCESS":
            passed += 1
        else:
            failed += 1
            line += f"\n           reason: {r.reason}"
        print(line)
    print(f"conformance: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
