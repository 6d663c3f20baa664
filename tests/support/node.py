"""Running one of clients/test's Node checks: JSON in on stdin, JSON out on stdout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

CLIENTS = Path(__file__).parent.parent.parent / "clients"


def node_check(script: str, payload: Any) -> dict[str, Any]:
    """Run ``clients/test/<script>`` on ``payload``; its JSON answer."""
    result = subprocess.run(
        ["node", str(CLIENTS / "test" / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        cwd=CLIENTS,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer
