"""Headless Chromium (Debian's chromium + chromium-driver) driven through WebDriver
(selenium) against a real `protoreg serve` with tokens: sign in, browse a subject, a
version, a file, follow a type link, open a diff and find the finding next to its line,
open a refused push, and check that markup in a comment stays text. Saves a screenshot of
each page. Raises on any failure; prints `ok` last.

Usage: browser.py BASE_URL TOKEN SCREENSHOT_DIR
"""

import os
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE, TOKEN, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(SHOTS, exist_ok=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


options = webdriver.ChromeOptions()
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"]:
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.implicitly_wait(5)
shot = lambda name: driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))
# Waits for what a click leads to (a click returns before the next page has loaded).
wait = WebDriverWait(driver, 15)

try:
    # Signing in: the registry has tokens, so the UI asks for one and comes back.
    driver.get(BASE + "/")
    check("/ui/sign-in" in driver.current_url, f"sent to sign in: {driver.current_url}")
    shot("sign-in")
    driver.find_element(By.NAME, "token").send_keys("wrong")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    check("unknown token" in error.text, "a wrong token is refused")
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_matches(r"/ui/?$"))
    check(driver.current_url.rstrip("/").endswith("/ui"), f"signed in: {driver.current_url}")
    check(driver.find_element(By.TAG_NAME, "h1").text == "Subjects", "the subjects page")
    shot("subjects")

    # A subject: its timeline and a refused push with its findings.
    driver.find_element(By.LINK_TEXT, "shop.v1").click()
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "shop.v1"))
    check(driver.find_element(By.TAG_NAME, "h1").text == "shop.v1", "the subject page")
    refusal = driver.find_element(By.ID, "refusal-1")
    refusal.find_element(By.TAG_NAME, "summary").click()
    finding = refusal.find_element(By.CLASS_NAME, "finding")
    check(finding.is_displayed() and "FIELD_NO_DELETE" in finding.text, f"refused push findings: {finding.text}")
    shot("subject")

    # A version, a file with the injected script as text.
    driver.find_element(By.LINK_TEXT, "v2").click()
    driver.find_element(By.PARTIAL_LINK_TEXT, "shop/v1/item.proto").click()
    wait.until(EC.url_contains("/files/shop/v1/item.proto"))
    body = driver.find_element(By.TAG_NAME, "body").text
    check("<script>alert(1)</script>" in body, "the comment's markup shows as text")
    try:
        driver.switch_to.alert
        raise AssertionError("a script ran")
    except NoAlertPresentException:
        print("ok: no script ran")
    check(driver.execute_script("return document.querySelectorAll('main script').length") == 0, "no script element")
    shot("file")

    # The diff of the breaking change accepted under NONE: the finding right after its line.
    driver.back()
    driver.find_element(By.PARTIAL_LINK_TEXT, "Changes from v1 to v2").click()
    changed = driver.find_element(By.XPATH, "//span[contains(@class,'add') and contains(., 'int64 name = 2;')]")
    following = changed.find_element(By.XPATH, "following-sibling::*[1]")
    check("finding" in following.get_attribute("class") and "FIELD_SAME_TYPE" in following.text,
          f"the finding next to its line: {following.text}")
    check("why:" in following.text and "fix:" in following.text, "with why and fix")
    shot("diff")

    # Another subject's file: follow a type link to its definition (another file).
    driver.get(BASE + "/ui/subjects/orders.v1/versions/1/files/shop/v1/order.proto")
    driver.find_element(By.CSS_SELECTOR, "a.type[title='shop.v1.Line']").click()
    wait.until(EC.url_contains("/files/shop/v1/line.proto"))
    check(driver.current_url.endswith("/files/shop/v1/line.proto#L4"), f"followed to {driver.current_url}")
    target = driver.execute_script("return document.querySelector(':target').id")
    check(target == "L4", f"the definition's line is the target: {target}")
    shot("type-link")
    # And into a dependency's subject.
    driver.back()
    driver.find_element(By.CSS_SELECTOR, "a.type[title='acme.common.v1.Money']").click()
    wait.until(EC.url_contains("/ui/subjects/acme.common.v1/"))
    check("/ui/subjects/acme.common.v1/versions/1/files/acme/common/v1/money.proto#L" in driver.current_url,
          f"into the dependency: {driver.current_url}")

    # The rules page.
    driver.find_element(By.LINK_TEXT, "rules").click()
    wait.until(EC.url_contains("/ui/rules"))
    check(len(driver.find_elements(By.CSS_SELECTOR, "tbody tr")) >= 50, "every rule listed")
    shot("rules")
finally:
    driver.quit()
print("ok")
