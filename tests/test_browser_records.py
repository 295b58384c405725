"""Assessment records in a real browser (headless Chromium, Selenium), one session from sign-in to erasure, on a
real PostgreSQL server started by the suite: a clinician signs in, saves three assessments of one person from
the upload page, the database is stopped before a fourth save (the answer stays on the page, the save gets its
sentence; after a restart the three are intact and the fourth absent), the history page shows the three,
exports them as CSV, and the erasure leaves nothing of the person in the database."""

from __future__ import annotations

import csv
import os
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select

from dashboard.widgets import ANSWER_LABEL as ANSWER
from dashboard_browser import browser_available, chrome, click_when_ready, main_text, page_ready, upload_file, wait
from dashboard_fixtures import encode, face_image

pytestmark = pytest.mark.slow
CODE = "P-0042"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def records_server(tiny_experiment_dir, postgres_server, tmp_path_factory):
    missing = browser_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"The browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from dashboard import serve
    from engine.records import users

    users_file = tmp_path_factory.mktemp("users") / "users.json"
    users.add(users_file, "alice", "clinician", PASSWORD)
    url = postgres_server.create_database(f"b{uuid.uuid4().hex[:12]}")
    process, address = serve.start(tiny_experiment_dir.parent, env={
        "TF_CPP_MIN_LOG_LEVEL": "2", "PAINLENS_USERS": str(users_file), "PAINLENS_DATABASE_URL": url})
    yield address, url
    serve.stop(process)


def by_label(driver, label: str, tag: str = "input"):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"[data-testid='stMain'] {tag}[aria-label='{label}']")


def click_text(driver, tag: str, text: str) -> None:
    click_when_ready(driver, f"//{tag}[contains(normalize-space(.), \"{text}\")]")


def csv_button(driver):
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] [data-testid='stDownloadButton'] button")
    return next(b for b in buttons if b.text.strip().split("\n")[-1] == "CSV")


def type_in(field, value: str, enter: bool = False) -> None:
    from selenium.webdriver.common.keys import Keys

    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value + (Keys.ENTER if enter else ""))


def idle(title: str):
    return page_ready(title, False)


def test_sign_in_save_three_see_the_history_export_it_erase_the_person(records_server, postgres_server,
                                                                       tmp_path_factory, tmp_path):
    from engine.records.models import Assessment, AssessmentImage, AuditEvent, Person

    base, url = records_server
    downloads = tmp_path_factory.mktemp("records-downloads")
    driver = chrome(downloads)
    try:
        driver.get(base)
        wait(driver, idle("Sign in"), 120, "no sign-in form")
        type_in(by_label(driver, "Name"), "alice")
        type_in(by_label(driver, "Password"), PASSWORD)
        click_text(driver, "button", "Sign in")
        wait(driver, idle("Upload and predict"), 120, "the clinician's first page did not open")

        photo = tmp_path / "Jane Doe.jpg"  # a name in the file name: it must not reach the database
        photo.write_bytes(encode(face_image(31, size=(480, 480)), "JPEG", quality=90))
        upload_file(driver, photo)
        wait(driver, lambda d: ANSWER in main_text(d) and idle("Upload")(d), 240, "no answer")
        click_text(driver, "summary", "Save this assessment")
        seconds = []
        for number, (score, note) in enumerate(((2, "calm"), (7, "after stretching"), (None, "evening")), start=1):
            type_in(by_label(driver, "Person code (pseudonymous, never a name)"), CODE)
            click_text(driver, "label", "Wong-Baker FACES" if score is not None else "no rating")
            if score is not None:  # the form keeps what was typed after a save: the next one changes what differs
                type_in(by_label(driver, "Score on that scale"), str(score))
            type_in(by_label(driver, "Note (optional)", "textarea"), note)
            clock = time.perf_counter()
            click_text(driver, "button", "Save assessment")
            wait(driver, lambda d: f"Saved as assessment {number} of {CODE}" in main_text(d) and idle("Upload")(d), 60,
                 f"save {number} was not confirmed")
            seconds.append(time.perf_counter() - clock)
        print("click on Save to its confirmation (the form is a fragment: only it reruns), seconds:", [round(s, 2) for s in seconds])

        postgres_server.stop()
        try:
            click_text(driver, "button", "Save assessment")
            wait(driver, lambda d: "cannot be reached" in main_text(d) and idle("Upload")(d), 60, "no sentence")
            text = main_text(driver)
            assert "nothing was saved" in text and ANSWER in text and "Traceback" not in text
        finally:
            postgres_server.start()

        click_text(driver, "a", "Person history")
        wait(driver, idle("Person history"), 60)
        type_in(by_label(driver, "Person code"), CODE, enter=True)
        wait(driver, lambda d: f"3 assessments of {CODE}" in main_text(d) and page_ready("Person history", True)(d), 60,
             "the history did not show")
        csv_button(driver).click()
        found = wait(driver, lambda d: [p for p in downloads.glob("*.csv") if p.stat().st_size > 0], 60, "no CSV")
        rows = list(csv.DictReader(found[0].open(encoding="utf-8")))
        assert [row["note"] for row in rows] == ["calm", "after stretching", "evening"]
        assert [row["answer_kind"] for row in rows] == ["absolute"] * 3  # no calm reference was given
        assert [row["rating_score"] for row in rows] == ["2.0", "7.0", ""] and all(row["p_pain"] or row["why_no_number"]
                                                                                  for row in rows)

        click_text(driver, "summary", "Delete this person's records")
        type_in(by_label(driver, f"Type {CODE} to confirm"), CODE, enter=True)
        wait(driver, lambda d: idle("Person history")(d) and d.find_element(
            "xpath", f"//button[contains(., 'Delete all records of {CODE}')]").is_enabled(), 60)
        click_text(driver, "button", f"Delete all records of {CODE}")
        wait(driver, lambda d: f"Deleted 3 assessments of {CODE}" in main_text(d), 60, "no erasure")
    finally:
        driver.quit()

    from engine.records.database import engine_url

    engine = create_engine(engine_url(url))
    with engine.connect() as connection:
        left = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                for table in (Person, Assessment, AssessmentImage)}
        actions = connection.execute(select(AuditEvent.action, AuditEvent.actor)).all()
    engine.dispose()
    assert left == {"persons": 0, "assessments": 0, "assessment_images": 0}
    assert sorted(actions) == sorted([("sign_in", "alice")] + [("save", "alice")] * 3 + [("view_history", "alice"),
                                                                                         ("erase", "alice")])
