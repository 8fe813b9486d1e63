"""Accessibility checks for the browser tests: axe-core (from axe-playwright-python), page width, focus ring."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.base import AXE_SCRIPT  # axe-core's axe.min.js, as the package ships it

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
BLOCKING = ("serious", "critical")


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line per element."""
    if not page.evaluate("typeof window.axe === 'object'"):  # once per document (htmx swaps keep it)
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        for node in violation["nodes"]:
            found.append(f"{violation['id']} ({violation['impact']}) at {', '.join(map(str, node['target']))}: "
                         f"{node.get('failureSummary', '').splitlines()[-1].strip()} -- {node['html'][:160]}")
    return found


def horizontal_overflow(page: Any) -> str | None:
    """Why the page scrolls sideways (its width beyond the window's and the widest culprits), or None."""
    return page.evaluate("""() => {
        const doc = document.scrollingElement, width = window.innerWidth;
        if (doc.scrollWidth <= width) return null;
        const wide = [];
        for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.right > width + 1 && !el.closest('.table-wrap')) {
                wide.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\\s+/g, '.') : ''} (right ${Math.round(box.right)})`);
            }
        }
        return `scrollWidth ${doc.scrollWidth} > ${width}: ${wide.slice(0, 8).join('; ')}`;
    }""")


def page_problems(page: Any) -> list[str]:
    """axe's blocking violations and, at phone width, a page that scrolls sideways."""
    problems = axe_violations(page)
    overflow = horizontal_overflow(page)
    if overflow:
        problems.append(f"horizontal scroll: {overflow}")
    return problems
