"""Make the README's screenshot of the console's failures page: docs/console-failures.png.

Starts both sandboxes and the service in this process (integration_sandbox.local_stack), makes a
few real failures (the Zuora sandbox lacks the link field, so creating the billing accounts'
twins in Zuora is rejected), signs in with headless Chromium and photographs /console/failures at 1280 px.

    .venv/bin/python scripts/console_screenshot.py [OUTPUT.png]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_sandbox.local_stack import LocalStack  # noqa: E402
from tests import browser  # noqa: E402
from tests.stack_helpers import create_billing_account  # noqa: E402


def main(output: Path) -> None:
    reason = browser.missing_browser()
    if reason:
        sys.exit(f"error: {reason}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir, \
            LocalStack(workdir, zuora_options={"custom_fields": ()}) as stack:
        for account_id, name in (("acc-1001", "Northwind Traders"), ("acc-1002", "Contoso Ltd"),
                                 ("acc-1003", "Fabrikam GmbH")):
            create_billing_account(stack, account_id=account_id, customer_id=f"cust-{account_id[4:]}", name=name)
        stack.wait_idle()
        with sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            page = chromium.new_page(viewport={"width": 1280, "height": 560})
            browser.sign_in(page, stack.service_url, stack.admin_token)
            page.goto(f"{stack.service_url}/console/failures")
            page.locator('input[name="ids"]').first.check()
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output))
            chromium.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console-failures.png")
