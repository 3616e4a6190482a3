"""Render the crash-point suite's results (.crash-results/*.jsonl, written by tests/crash) as
crash-results.md: one row per case, the invocations and what became of each event.

    python -m tests.crash.report
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / ".crash-results"


def main() -> int:
    rows = []
    for path in sorted(RESULTS.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda row: (row["file"], row["case"]))
    lines = ["| case | invocations | outcome |", "|---|---|---|"]
    for row in rows:
        statuses = Counter(entry.split(": ")[1] for entry in row["invocations"])
        invocations = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        # "web 3: delivered, processed 1x" x 10 -> "10 web: delivered, processed 1x"
        grouped = Counter((name.split(" ")[0], what) for name, what in row["outcome"].items())
        outcome = "; ".join(f"{count} {kind}: {what}" if count > 1 or kind in ("web", "offline") else f"{kind}: {what}"
                            for (kind, what), count in grouped.items())
        lines.append(f"| `{row['case']}` | {invocations} | {outcome} |")
    out = REPO / "crash-results.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(rows)} cases -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
