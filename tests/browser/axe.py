"""Run the vendored axe-core (tests/browser/vendor/axe.min.js) on a page; return its serious and
critical violations as short strings (empty: none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe.min.js"


async def serious_violations(page: Any) -> list[str]:
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=AXE.read_text())
    result = await page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})) }"
    )
    return [f"{v['id']} ({v['impact']}): {', '.join(v['nodes'][:3])}" for v in result
            if v["impact"] in ("serious", "critical")]
