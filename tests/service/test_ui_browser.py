"""The operator page in a real headless browser (Debian's chromium + chromedriver, driven by Selenium) against a
real ``redwood serve`` on 127.0.0.1: log in through the form, see the policy, the bandit session and the recent
decisions, with SVG charts. ``REDWOOD_UI_SCREENSHOT=docs/img/operator_page.png`` also saves the screenshot."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from api.service.harness import Server
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
CHROMIUM = os.environ.get("REDWOOD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("REDWOOD_CHROMEDRIVER", "/usr/bin/chromedriver")


def _browser_or_skip():
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            pytest.skip(
                f"{path} not found: apt-get install -y {package} (or set REDWOOD_CHROMIUM / REDWOOD_CHROMEDRIVER)"
            )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    return webdriver, Service


def _checkpoint_with_evaluation(root: Path) -> Path:
    """A small capacity checkpoint whose training summary carries an evaluation (the page charts it)."""
    import torch

    from engine import Engine
    from engine.sequoia.dqn import make_encoder
    from engine.sequoia.q_network import QNetwork
    from scenarios import make

    env = make("capacity", n_arms=10, budget=3, seed=0)
    enc = make_encoder(env.instance)
    torch.manual_seed(0)
    net = QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim)
    returns = [round(4.0 + 1.5 * (i % 7) / 7 + 0.05 * i, 3) for i in range(40)]
    summary = {"note": "untrained test weights", "evaluation": {"returns": returns, "episodes": len(returns)}}
    return Engine(env.scenario, env.instance, net, training_summary=summary).save(root / "cap10eval")


def _save_small(shot: Path, target: Path) -> None:
    """The screenshot as a 64-colour PNG (a few tens of kB), or as taken when Pillow is missing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:
        shutil.copyfile(shot, target)
        return
    with Image.open(shot) as img:
        img.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


@pytest.mark.timeout(90)
def test_operator_page_in_headless_chromium(tmp_path):
    webdriver, Service = _browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    policy_dir = tmp_path / "policies"
    _checkpoint_with_evaluation(policy_dir)
    server = Server(f"sqlite:///{tmp_path / 'ui.db'}", policy_dir, ADMIN).start(timeout=40)
    driver = None
    try:
        with httpx.Client(base_url=server.base, headers=H, timeout=20) as c:
            pid = c.post("/v1/policies", json={"path": "cap10eval"}).json()["id"]
            ids = []
            for i in range(12):
                state = [(i + j) % 4 for j in range(10)] + [20 - i]
                body = {"state": state, "selector": "auto"} | ({"deadline_seconds": 1e-6} if i % 5 == 4 else {})
                r = c.post(f"/v1/policies/{pid}/decisions", json=body)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            batch = c.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [[0] * 10 + [5]] * 2})
            ids += [d["id"] for d in batch.json()["decisions"]]
            sid = c.post(
                "/v1/sessions", json={"kind": "cucb", "n_arms": 6, "constraint": {"type": "top_k", "k": 2}}
            ).json()["id"]
            for _ in range(3):
                sel = c.post(f"/v1/sessions/{sid}/select", json={}).json()
                c.post(f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback", json={"reward": 0.7}).raise_for_status()
            read_key = c.post("/v1/keys", json={"name": "operator", "scopes": ["read"]}).json()["key"]

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "--window-size=1280,1100",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(20)
        wait = WebDriverWait(driver, 15)

        driver.get(f"{server.base}/v1/ui")  # no key yet: the log-in form
        wait.until(ec.presence_of_element_located((By.ID, "key")))
        driver.find_element(By.ID, "key").send_keys("rw_not_a_key")
        driver.find_element(By.ID, "login").click()
        assert "unknown" in wait.until(ec.presence_of_element_located((By.ID, "error"))).text
        driver.find_element(By.ID, "key").send_keys(read_key)
        driver.find_element(By.ID, "login").click()
        wait.until(ec.presence_of_element_located((By.ID, "decisions")))

        policies = driver.find_element(By.ID, "policies")
        assert pid in policies.text and "capacity" in policies.text
        assert policies.find_elements(By.CSS_SELECTOR, "svg polyline"), "no evaluation returns chart"
        assert "evaluation returns" in policies.text
        assert "no jobs" in driver.find_element(By.ID, "jobs").text or driver.find_elements(
            By.CSS_SELECTOR, "#jobs table"
        )
        sessions = driver.find_element(By.ID, "sessions")
        row = next(r for r in sessions.find_elements(By.CSS_SELECTOR, "tbody tr") if sid in r.text)
        assert row.text.split()[1:4] == ["cucb", "3", "3"]
        decisions = driver.find_element(By.ID, "decisions")
        rows = decisions.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == len(ids)
        shown = decisions.text
        assert all(i in shown for i in ids)
        bars = decisions.find_elements(By.CSS_SELECTOR, "svg rect")
        assert len(bars) == len(ids), "one latency bar per recent decision"
        assert decisions.find_elements(By.CSS_SELECTOR, ".flag"), "deadline-flagged decisions are marked"
        cookie = driver.get_cookie("redwood_ui_key")
        assert cookie and cookie["httpOnly"] and cookie["path"] == "/v1/ui"

        shot = tmp_path / "operator_page.png"
        driver.set_window_size(1280, 1100)
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("REDWOOD_UI_SCREENSHOT"):
            _save_small(shot, Path(os.environ["REDWOOD_UI_SCREENSHOT"]))

        driver.find_element(By.CSS_SELECTOR, "header form button").click()  # log out: the cookie is gone
        wait.until(ec.presence_of_element_located((By.ID, "key")))
        assert driver.get_cookie("redwood_ui_key") is None
        driver.get(f"{server.base}/v1/ui?key={read_key}")  # the query-parameter form of the key
        wait.until(ec.presence_of_element_located((By.ID, "sessions")))
        assert sid in driver.find_element(By.ID, "sessions").text
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
    assert time.monotonic() - started < 60
