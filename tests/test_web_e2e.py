"""The web app end to end in a real browser: the Streamlit server as a subprocess on the real
default model, driven by headless Chromium through selenium.

Sign in as an admin, create a collection, upload a PDF (background ingestion with progress), ask a question and see
the answer stream in with a citation of the right page (and its page image), compare LLoCO with
plain RAG, run a two-question evaluation; then sign in as an analyst granted the collection, who gets Chat and
Compare but no Collections admin page. Screenshots go to .cache/screenshots/ (so a test run
leaves the tree clean); LLOCO_SCREENSHOT_DIR=docs/screenshots refreshes the ones the README shows. Skipped without chromium + chromedriver
(`make browser` installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.demo import DEMO_DIR
from tests.conftest import MODEL_CACHE, REPO

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
    pytest.skip("chromium and chromedriver are not installed (`make browser`)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

SHOTS = Path(os.environ.get("LLOCO_SCREENSHOT_DIR", REPO / ".cache" / "screenshots"))
QUESTION = "Which engineer built the Eddystone lighthouse completed in 1759 from dovetailed granite blocks?"
PAGE = 5  # data/demo/questions.jsonl: the answer is on page 5 of lighthouses.pdf
ADMIN_PASSWORD, ANALYST_PASSWORD = "correct horse battery", "battery staple horse"
ONE_TIME = "given once by an admin"
ETA = re.compile(r"\((about \d+ (?:s|min) left|estimating time left)\)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m app.web.serve` (what `make run` starts) on a fresh home, without the demo."""
    from app.accounts.store import Accounts
    from app.config import Settings
    from indexing.catalog import open_catalog

    home, port = tmp_path_factory.mktemp("web-home"), _free_port()
    accounts = Accounts(open_catalog(Settings(home=home).resolved_database_url))
    accounts.create_user("ann", ADMIN_PASSWORD, role="admin")
    accounts.create_user("bob", ANALYST_PASSWORD)
    accounts.create_user("carol", ONE_TIME, one_time=True)  # an admin set it: her first sign-in changes it
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLOCO_") or k.startswith("LLOCO_TEST_")}
    env.update(LLOCO_HOME=str(home), LLOCO_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = (tmp_path_factory.mktemp("web-log") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "app.web.serve", "--host", "127.0.0.1", "--port", str(port), "--no-demo"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        yield url, Path(log.name), home
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1400",
                "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, timeout: float = 60, step: float = 0.2, what: str = "the page"):
    """Poll ``condition()`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = condition()
        except WebDriverException:  # the DOM changes under us while Streamlit reruns
            found = None
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def button(driver, label: str):
    return wait_for(lambda: next((b for b in driver.find_elements(By.TAG_NAME, "button")
                                  if b.text.strip() == label and b.is_enabled()), None), what=f"button {label!r}")


def page(driver, title: str) -> None:
    for attempt in range(3):  # a click that lands while a finished job reruns the page is lost: click again
        link = wait_for(lambda: next((a for a in driver.find_elements(By.CSS_SELECTOR, "a[data-testid=stSidebarNavLink]")
                                      if a.text.endswith(title)), None), what=f"the {title} link")
        link.click()
        try:
            wait_for(lambda: any(title in h for h in texts(driver, "h1")), timeout=30, what=f"the {title} page")
            return
        except AssertionError:
            if attempt == 2:
                raise


def settle(driver, seconds: float = 1.0) -> None:
    """Wait until Streamlit has stopped running the script (its status widget gone) for a moment."""
    quiet_since = None
    deadline = time.time() + 120
    while time.time() < deadline:
        running = driver.find_elements(By.CSS_SELECTOR, "[data-testid=stStatusWidget]")
        quiet_since = None if running else (quiet_since or time.time())
        if quiet_since and time.time() - quiet_since >= seconds:
            return
        time.sleep(0.1)


def sign_in(driver, name: str, password: str) -> None:
    # the sign-in page, fully drawn: typing into a form that a rerun is still replacing loses the keys
    wait_for(lambda: any("Sign in to lloco" in h for h in texts(driver, "h1")), what="the sign-in page")
    signed_in = lambda: any(f"Signed in as {name}" in t for t in texts(driver, "[data-testid=stCaptionContainer]"))  # noqa: E731
    refused = lambda: any("wrong user name or password" in t for t in texts(driver, "[data-testid=stAlert]"))  # noqa: E731
    for _ in range(3):
        settle(driver)
        user = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "input[aria-label='User name']"), what="the sign-in form")
        secret = driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']")
        for box, value in ((user, name), (secret, password)):
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(value)
        try:  # a rerun that replaced the form while we typed leaves it (partly) empty: type again
            if [box.get_attribute("value") for box in (user, secret)] != [name, password]:
                continue
        except WebDriverException:
            continue
        button(driver, "Sign in").click()
        time.sleep(0.5)
        settle(driver)  # the rerun the click started has drawn its page (a refusal of an earlier try is gone)
        try:  # refused: the keys were lost between the check and the click (the password is right)
            wait_for(lambda: signed_in() or refused(), what=f"{name} to be signed in")
        except AssertionError:
            shoot(driver, f"failed-sign-in-{name}.png")
            raise AssertionError(f"{name} not signed in after 60 s: headings {texts(driver, 'h1')}, "
                                 f"alerts {texts(driver, '[data-testid=stAlert]')}") from None
        if signed_in():
            return
    shoot(driver, f"failed-sign-in-{name}.png")
    raise AssertionError(f"{name} not signed in after three tries: alerts {texts(driver, '[data-testid=stAlert]')}")


def watch_ingestion(driver, done_prefix: str, timeout: float = 300) -> tuple[list[str], list[str], str]:
    """Follow an ingestion job to its end: the progress labels and the Busy banners seen (each change
    once, in order), and its result line."""
    labels: list[str] = []
    banners: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            alerts = texts(driver, "[data-testid=stAlert]")
            for seen, now in ((labels, texts(driver, "[data-testid=stProgress]")),
                              (banners, [t for t in alerts if t.startswith("Busy:")])):
                for t in now:
                    if t and (not seen or seen[-1] != t):
                        seen.append(t)
        except WebDriverException:  # the DOM changes under us while Streamlit reruns
            continue
        done = next((t for t in alerts if t.startswith(done_prefix)), None)
        if done:
            return labels, banners, done
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {done_prefix!r}")


def ask_in_chat(driver, question: str) -> None:
    """Ask in the open conversation and wait for its answer to finish: two more messages, the last
    with its 'prompt tokens' caption (a count of captions alone can be fooled by a rerun's leftovers)."""
    css = "[data-testid=stChatMessage]"
    before = len(driver.find_elements(By.CSS_SELECTOR, css))
    box = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "textarea[data-testid=stChatInputTextArea]"))
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    def finished() -> bool:
        messages = driver.find_elements(By.CSS_SELECTOR, css)
        return len(messages) >= before + 2 and any(
            "prompt tokens" in c.text for c in messages[-1].find_elements(By.CSS_SELECTOR, "[data-testid=stCaptionContainer]"))

    wait_for(finished, timeout=300, what=f"the answer to {question!r}")
    settle(driver, 2.0)


def asked_as(driver) -> list[str]:
    return [t for t in texts(driver, "[data-testid=stCaptionContainer]") if t.startswith("Asked as:")]


def set_thresholds(home: Path, collection: str, *, decline: float | None) -> None:
    """Give the collection's rag and lloco modes this decline threshold (None: not calibrated)."""
    from app.config import Settings
    from app.core.confidence import Thresholds, thresholds_json
    from indexing import catalog_queries as cq
    from indexing.catalog import open_catalog

    sessions = open_catalog(Settings(home=home).resolved_database_url)
    t = None if decline is None else thresholds_json(
        {m: Thresholds(decline=decline, supported=1.01, precision=0.0, coverage=0.0, n=10) for m in ("rag", "lloco")})
    cq.set_thresholds(sessions, cq.collection_row(sessions, collection).id, t)


def shoot(driver, name: str, top=None) -> None:
    """Screenshot the page once Streamlit is idle; ``top()`` finds the element to scroll to the top
    first (found again after settling: a rerun replaces elements and scrolls a chat to its end)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    settle(driver)
    if top is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", wait_for(top, what="the element to shoot"))
        time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / name))


def test_upload_ask_compare_evaluate_in_a_real_browser(server, browser, tmp_path):
    url, log, home = server
    d = browser
    d.get(url)
    assert not d.find_elements(By.CSS_SELECTOR, "a[data-testid=stSidebarNavLink]")  # nothing before signing in
    sign_in(d, "ann", ADMIN_PASSWORD)
    wait_for(lambda: any("No collection yet" in t for t in texts(d, "[data-testid=stAlert]")), what="the empty home")

    # Collections: create one and upload a PDF; ingestion runs in the background with progress
    page(d, "Collections")
    name_box = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "input[aria-label='New collection name']"))
    name_box.send_keys("lighthouses")
    button(d, "Create").click()
    wait_for(lambda: any("created lighthouses" in t for t in texts(d, "[data-testid=stAlert]")), timeout=180,
             what="the collection to be created (models load first)")
    upload = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "[data-testid=stTab] + * input[type=file], input[type=file]"),
                      what="the file uploader")
    upload.send_keys(str(DEMO_DIR / "lighthouses.pdf"))
    button(d, "Ingest 1 file(s)").click()
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "[data-testid=stProgress]"), timeout=180,
             what="the ingestion progress bar")  # generous: a loaded CPU once took > 60 s
    labels, banners, done = watch_ingestion(d, "lighthouses.pdf: 6 page(s)")
    assert "chunks" in done
    # issue 27: the time left is not guessed before the slow stage is measured; the banner follows the stage
    assert any("(estimating time left)" in t for t in labels), ("progress labels", labels)
    assert len({t for t in banners if "compress" in t} | {t for t in banners if "embed" in t}) >= 2, ("banners", banners)
    shoot(d, "collections.png")
    # a second upload to the collection knows the pace from the first: an estimate that counts down
    upload = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "input[type=file]"), what="the file uploader")
    upload.send_keys("\n".join(str(DEMO_DIR / f) for f in ("honeybees.pdf", "tides.md", "coffee.txt")))
    button(d, "Ingest 3 file(s)").click()
    labels, _, _ = watch_ingestion(d, "coffee.txt: ")
    estimates = [m.group(1) for t in labels if (m := ETA.search(t)) and m.group(1).startswith("about")]
    assert len(set(estimates)) >= 2, ("second job's labels", labels)
    settle(d, 2.0)  # the page reruns once when the job ends

    # Chat: ask (plain RAG, so the untrained-compressor case reads text), see the answer stream in
    page(d, "Chat")
    wait_for(lambda: d.find_element(By.XPATH, "//label[.//p[starts-with(., 'Plain RAG')]]"), what="the mode").click()
    box = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "textarea[data-testid=stChatInputTextArea]"))
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)

    def answer_text() -> str:
        messages = d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")
        if len(messages) < 2:
            return ""
        parts = messages[-1].find_elements(By.CSS_SELECTOR, "[data-testid=stMarkdownContainer]")
        return parts[0].text if parts else ""

    seen: list[str] = []
    deadline = time.time() + 300
    while time.time() < deadline:
        current = answer_text()
        if current and (not seen or current != seen[-1]):
            seen.append(current)
        if any("prompt tokens" in t for t in texts(d, "[data-testid=stCaptionContainer]")):
            break
        time.sleep(0.05)
    final = answer_text()
    assert final.strip(), "no answer appeared"
    assert len(seen) >= 2 and seen[0] != final, f"the answer did not stream in: {seen}"
    summaries = texts(d, "[data-testid=stExpander] summary")
    cites = [s for s in summaries if "lighthouses.pdf, p" in s]
    assert any(f"lighthouses.pdf, p. {PAGE}" in s for s in cites), cites
    assert any("Plain RAG | prompt tokens" in t for t in texts(d, "[data-testid=stCaptionContainer]"))
    # open the citation on the right page: its page image, with the snippet highlighted
    right = next(e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stExpander] summary")
                 if f"lighthouses.pdf, p. {PAGE}" in e.text)
    right.click()
    wait_for(lambda: any(f"page {PAGE} (cited text highlighted)" in t
                         for t in texts(d, "[data-testid=stImageCaption], [data-testid=stCaptionContainer]")),
             what="the highlighted page image")
    shoot(d, "chat.png", top=lambda: d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")[0])
    # issue 27: a follow-up is asked as a standalone question (and says so); a change of topic as typed
    ask_in_chat(d, "Who designed it?")
    assert len(asked_as(d)) == 1 and "Eddystone" in asked_as(d)[0], asked_as(d)
    ask_in_chat(d, "How many eggs per day can a healthy honeybee queen lay?")
    assert len(asked_as(d)) == 1, asked_as(d)  # the new topic was not glued onto the lighthouse question
    # issue 23: every answer says how it was checked, and lists each claim with its evidence or what is lacking;
    # below its collection's decline threshold an answer is declined (a threshold set here: calibration's own
    # choice is unit-tested in tests/test_calibrate.py)
    checks = [t for t in texts(d, "[data-testid=stCaptionContainer]") if "Checked against the sources" in t]
    assert len(checks) >= 3 and any("Each claim and its evidence" in s for s in texts(d, "[data-testid=stExpander] summary"))
    set_thresholds(home, "lighthouses", decline=0.999)
    ask_in_chat(d, "What did the keeper of the Eddystone lighthouse do every night?")
    last = d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")[-1]
    assert "The documents don't seem to say." in last.text, last.text
    assert any("declined: the documents don't seem to say (confidence" in c.text
               for c in last.find_elements(By.CSS_SELECTOR, "[data-testid=stCaptionContainer]")), last.text
    # the unsupported claim of the answer before, then the declined one
    shoot(d, "chat-declined.png", top=lambda: d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")[-3])
    set_thresholds(home, "lighthouses", decline=None)

    # Compare: the same question, LLoCO (vectors + sentences), pure LLoCO and plain RAG side by side, with the ratios
    page(d, "Compare")
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, "textarea[aria-label=Question]")).send_keys(QUESTION)
    button(d, "Compare").click()
    wait_for(lambda: any("LLoCO / Plain RAG" in t for t in texts(d, "[data-testid=stMarkdownContainer]")), timeout=300,
             what="both answers and the ratios")
    labels = texts(d, "[data-testid=stMetricLabel]")
    assert labels.count("Prompt tokens") == 3 and "prompt tokens" in labels
    tokens = [int(t.text.split("\n")[-1]) for t in d.find_elements(By.CSS_SELECTOR, "[data-testid=stMetric]")
              if t.text.startswith("Prompt tokens")]
    assert tokens[1] <= tokens[0] < tokens[2], tokens  # pure lloco <= lloco with its sentences < the chunks' text
    shoot(d, "compare.png")

    # Evaluation: a two-question run on a dataset file, with progress, then its report
    from tests.test_eval_runner import LAMP_QS, LIGHTHOUSE, write_quality

    (home / "data").mkdir(exist_ok=True)  # the server's home is a server root: admins may name files under it
    data = write_quality(home / "data" / "quality.jsonl", (LIGHTHOUSE, LAMP_QS))
    page(d, "Evaluation")
    wait_for(lambda: d.find_element(By.XPATH, "//summary[.//p[text()='Start a run']]")).click()
    path_box = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "input[aria-label^='Dataset file']"))
    path_box.send_keys(Keys.CONTROL, "a")
    path_box.send_keys(str(data))
    questions = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "input[aria-label='Questions (limit)']"))
    questions.send_keys(Keys.CONTROL, "a")
    questions.send_keys("2")
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, "input[aria-label^='Run name']")).send_keys("browser-run")
    button(d, "Start the run").click()
    wait_for(lambda: any(t.startswith("evaluate quality") and "done" in t for t in texts(d, "[data-testid=stAlert]")),
             timeout=400, what="the evaluation run to finish")
    wait_for(lambda: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=stImage] img")) >= 3, what="the plots")
    shoot(d, "evaluation.png", top=lambda: next(e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stSelectbox]")
                                                 if "Open a run" in e.text))
    assert any(t.startswith("run browser-run (#1, quality, done): 2 of 2 questions")
               for t in texts(d, "[data-testid=stCaptionContainer]"))

    # issue 27: the "Asked as" caption is kept with its answer (the conversation redrawn), and an answer
    # with a decimal and list-like numbers is shown as the text it is, not as Markdown
    from app.accounts.store import Accounts
    from app.config import Settings
    from app.core import chats
    from indexing.catalog import collection_named, open_catalog

    sessions = open_catalog(Settings(home=home).resolved_database_url)
    accounts = Accounts(sessions)
    with sessions() as session:
        collection_id = collection_named(session, "lighthouses").id
    chat = chats.start_chat(sessions, collection_id, user_id=accounts.get_user("ann").id)
    chats.record_message(sessions, chat.id, "user", "By how much did organic revenue grow?")
    chats.record_message(sessions, chat.id, "assistant", "14.3%\n1. 2. as stated")
    page(d, "Chat")
    wait_for(lambda: len(asked_as(d)) == 1, what="the Asked-as caption of the redrawn conversation")
    button(d, "By how much did organic revenue grow? (1)").click()
    shown = "[data-testid=stChatMessage] [data-testid=stMarkdownContainer]"
    wait_for(lambda: any(t.startswith("14.3%") for t in texts(d, shown)), what="the stored answer")
    answer = next(e for e in d.find_elements(By.CSS_SELECTOR, shown) if e.text.startswith("14.3%"))
    assert answer.text.splitlines() == ["14.3%", "1. 2. as stated"], answer.text  # line break kept
    assert not answer.find_elements(By.CSS_SELECTOR, "ol, ul, li")

    # an analyst granted the collection: Chat and Compare on it, no admin pages
    accounts.grant("bob", "lighthouses")
    button(d, "Sign out").click()
    sign_in(d, "bob", ANALYST_PASSWORD)
    links = [a.text for a in d.find_elements(By.CSS_SELECTOR, "a[data-testid=stSidebarNavLink]")]
    assert links and not any(t.endswith(("Collections", "Evaluation")) for t in links), links
    assert any(t.endswith("Chat") for t in links) and any(t.endswith("Compare") for t in links)
    box = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "textarea[data-testid=stChatInputTextArea]"))
    assert box.get_attribute("placeholder") == "Ask a question about lighthouses"  # the granted collection
    body = d.find_element(By.TAG_NAME, "body").text
    assert "Add documents" not in body and "conversation was deleted" not in body  # nothing of the admin's session

    # issue 27: the first sign-in with a one-time password asks for a new one before any page
    button(d, "Sign out").click()
    sign_in(d, "carol", ONE_TIME)
    wait_for(lambda: any("Choose a new password" in h for h in texts(d, "h1")), what="the new-password page")
    assert not any(a.text.endswith(("Chat", "Compare")) for a in d.find_elements(By.CSS_SELECTOR, "a[data-testid=stSidebarNavLink]"))
    for label, value in (("One-time password", ONE_TIME), ("New password", "carol's own passphrase"),
                         ("New password, again", "carol's own passphrase")):
        d.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']").send_keys(value)
    button(d, "Change the password").click()
    wait_for(lambda: any("Chat with your documents" in h for h in texts(d, "h1")), what="Chat after the change")
    assert accounts.sign_in("carol", "carol's own passphrase").name == "carol"
    assert "Traceback" not in log.read_text()
