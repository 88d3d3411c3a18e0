"""The web console (broker/src/http/console) in a real browser: Debian's headless
Chromium driven through chromedriver by selenium. The tests look at what a person sees
(topics listed, messages shown newest first with JSON pretty-printed, a group's lag),
make changes through the page (create a topic, change a config, reset a group's
offsets, delete the topic) and check them with real Kafka clients. Every test leaves
screenshots in $E2E_ARTIFACTS/console (default e2e/artifacts/console).

The module's node lets the console write (admin.console.write.enable); one test starts
a node of its own without it and checks that the page and the API refuse changes.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from e2e_util import wait_until

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", Path(__file__).parent / "artifacts")) / "console"

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(os.environ.get("E2E_BOOTSTRAP", "").strip()),
                       reason="needs strom's admin listener, not an external broker"),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="chromium and chromedriver are installed by e2e/setup.sh"),
]

STROM_SETTINGS = {"admin.console.write.enable": True}

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.implicitly_wait(0)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture
def page(browser, strom, request):
    """The browser on this node's console; on the way out a screenshot, and a check that
    the page logged no error (a failed request, a script error, a CSP violation)."""
    base = strom.nodes[0].admin_url
    browser.get("about:blank")  # stop the last test's page (its live refresh)
    browser.get_log("browser")  # and drop what it logged
    yield Page(browser, base, request.node.name)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


class Page:
    def __init__(self, driver, base: str, test: str):
        self.d, self.base, self.test = driver, base.rstrip("/"), test
        self.shots = 0

    def open(self, fragment: str):
        self.d.get(f"{self.base}/#{fragment}")

    def shot(self, what: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.test}-{self.shots:02d}-{what}.png"
        self.d.save_screenshot(str(path))
        return path

    def find(self, css: str, timeout: float = 15):
        return wait_until(lambda: self.d.find_elements(By.CSS_SELECTOR, css), timeout,
                          what=f"{css} on the page")[0]

    def all(self, css: str):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text_of(self, css: str, want, timeout: float = 20) -> str:
        """Waits until the element's text satisfies want (a string or a predicate)."""
        ok = want if callable(want) else (lambda t: t == want)

        def seen():
            els = self.all(css)
            return els[0].text if els and ok(els[0].text) else None
        try:
            return wait_until(seen, timeout, what=f"{css} showing {want!r}")
        except AssertionError:
            self.shot("timeout")
            els = self.all(css)
            raise AssertionError(f"{css}: {els[0].text if els else 'absent'!r}, wanted {want!r}")


def rf(strom) -> int:
    return len(strom.nodes)


def produce_json(bootstrap: str, topic: str, n: int, partition: int | None = None,
                 timestamps: list[int] | None = None):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        kw = {"partition": partition} if partition is not None else {}
        if timestamps:
            kw["timestamp"] = timestamps[i]
        p.produce(topic, key=f"order-{i}", value=json.dumps({"id": i, "item": "book", "qty": i % 3 + 1}),
                  headers=[("source", b"e2e")], **kw)
    assert p.flush(30) == 0


def test_cluster_page_shows_brokers_quorum_and_readiness(page, strom):
    page.open("/")
    ids = sorted(n.node_id for n in strom.nodes)
    wait_until(lambda: sorted(int(r.get_attribute("data-broker"))
                              for r in page.all("#brokers tbody tr")) == ids, 20,
               what=f"brokers {ids} listed")
    assert page.find('[data-card="brokers"] .n').text == str(len(ids))
    assert page.find('[data-card="fenced brokers"] .n').text == "0"
    assert page.text_of("#status", lambda t: t.endswith("ready") and "not" not in t)
    for row in page.all("#brokers tbody tr"):
        assert "active" in row.text
    # The quorum card names a leader that is one of the brokers.
    assert int(page.find('[data-card="leader"] .n').text) in ids
    page.shot("cluster")


def test_topic_listed_and_its_messages_shown(page, strom):
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=rf(strom))])[topic].result(30)
    base_ts = 1_790_000_000_000  # 2026-09-21T...Z, one record a second
    produce_json(strom.bootstrap, topic, 40, partition=0,
                 timestamps=[base_ts + i * 1000 for i in range(40)])

    page.open("/topics")
    search = page.find("#topic-search")
    search.send_keys(topic, Keys.ENTER)
    row = f'#topics tr[data-topic="{topic}"]'
    assert page.text_of(row, lambda t: topic in t and " 40 " in f" {t} ")
    assert "healthy" in page.find(row).text
    page.shot("topics")

    page.find(f"{row} a").click()
    assert page.text_of("#topic-name", topic)
    assert page.text_of('#partitions tr[data-partition="0"]', lambda t: "in sync" in t and "40" in t)
    page.find('.tabs a[data-tab="messages"]').click()
    assert page.text_of("#msg-count", "40 message(s)")
    cards = page.all(".msg")
    # Newest first: offsets 39, 38, ...; the value's JSON pretty-printed; key and header shown.
    assert [int(c.get_attribute("data-offset")) for c in cards[:3]] == [39, 38, 37]
    first = cards[0]
    assert first.find_element(By.CSS_SELECTOR, ".key").text == "order-39"
    value = first.find_element(By.CSS_SELECTOR, "pre.value").get_attribute("textContent")
    assert value.startswith('{\n  "id": 39,\n'), value  # pretty-printed, two-space indent
    assert json.loads(value) == {"id": 39, "item": "book", "qty": 1}
    assert "source=e2e" in first.find_element(By.CSS_SELECTOR, ".hdrs").text
    ts = datetime.datetime.fromtimestamp((base_ts + 39_000) / 1000, datetime.timezone.utc)
    assert ts.strftime("%Y-%m-%d %H:%M:%S") in first.text
    page.shot("messages-newest")

    # From an offset: 10, 11, ... oldest first, as many as the limit.
    Select(page.find("#msg-from")).select_by_value("offset")
    page.find("#msg-at").send_keys("10")
    limit = page.find("#msg-limit")
    limit.clear()
    limit.send_keys("5")
    page.find("#msg-load").click()
    assert page.text_of("#msg-count", "5 message(s)")
    assert [int(c.get_attribute("data-offset")) for c in page.all(".msg")] == [10, 11, 12, 13, 14]

    # From a time: the first record at or after it.
    Select(page.find("#msg-from")).select_by_value("timestamp")
    at = page.find("#msg-at")
    at.clear()
    at.send_keys(datetime.datetime.fromtimestamp((base_ts + 25_500) / 1000, datetime.timezone.utc)
                 .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    page.find("#msg-load").click()
    wait_until(lambda: [c.get_attribute("data-offset") for c in page.all(".msg")][:1] == ["26"], 15,
               what="messages from offset 26 (the first at or after the time)")
    page.shot("messages-from-time")


def test_group_lag_shown_and_offsets_reset_through_the_page(page, strom):
    topic = f"payments-{uuid.uuid4().hex[:6]}"
    group = f"payment_service-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=rf(strom))])[topic].result(30)
    produce_json(strom.bootstrap, topic, 50, partition=0)
    produce_json(strom.bootstrap, topic, 30, partition=1)
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    # Commit 20 on partition 0 and 30 (all) on partition 1: lag 30 + 0.
    c.commit(offsets=[TopicPartition(topic, 0, 20), TopicPartition(topic, 1, 30)], asynchronous=False)
    c.close()

    page.open("/groups")
    row = f'#groups tr[data-group="{group}"]'
    assert page.text_of(f"{row} .lag", "30")
    assert "Empty" in page.find(row).text
    page.shot("groups")
    page.find(f"{row} a").click()
    assert page.text_of(f'#offsets tr[data-tp="{topic}-0"] .lag', "30")
    assert page.text_of(f'#offsets tr[data-tp="{topic}-1"] .lag', "0")
    assert page.find('[data-card="total lag"] .n').text == "30"

    # Preview, then reset to the earliest: the plan shows 20 -> 0 and 30 -> 0.
    Select(page.find("#reset-to")).select_by_value("earliest")
    page.find("#reset-plan").click()
    plan = page.find("#reset-plan-table")
    rows = [r.text.split() for r in plan.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == [[topic, "0", "20", "0"], [topic, "1", "30", "0"]], rows
    page.shot("reset-preview")
    page.find("#reset-execute").click()
    assert page.text_of(f'#offsets tr[data-tp="{topic}-0"] .lag', "50")
    assert page.text_of('[data-card="total lag"] .n', "80")
    page.shot("reset-done")
    # A Kafka client sees the committed offsets the page set.
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group})
    got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=20)
    c.close()
    assert [tp.offset for tp in got] == [0, 0]


def test_create_configure_and_delete_a_topic_through_the_page(page, strom):
    topic = f"made-in-console-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    page.open("/topics")
    page.find("#new-topic-name").send_keys(topic)
    parts = page.find("#new-topic-partitions")
    parts.clear()
    parts.send_keys("4")
    page.find('#create-topic button[type="submit"]').click()
    assert page.text_of(".note.ok", f"Created topic {topic}")

    def created():
        md = a.list_topics(timeout=10)
        return md.topics.get(topic)
    assert len(wait_until(created, 20, what=f"{topic} in metadata").partitions) == 4
    page.shot("created")

    page.open(f"/topic/{topic}/configs")
    field = page.find('input[data-config="retention.ms"]')
    field.clear()
    field.send_keys("7200000")
    page.find('tr[data-config-row="retention.ms"] button').click()
    assert page.text_of(".note.ok", "Set retention.ms = 7200000")
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(20)
    assert cfg["retention.ms"].value == "7200000"
    assert page.text_of('tr[data-config-row="retention.ms"]', lambda t: "dynamic topic" in t)
    page.shot("config-set")

    page.open(f"/topic/{topic}")
    page.find("#delete-topic").click()
    page.d.switch_to.alert.accept()
    assert page.text_of(".note.ok", f"Deleted topic {topic}")
    wait_until(lambda: topic not in a.list_topics(timeout=10).topics, 20, what=f"{topic} deleted")
    page.shot("deleted")


def test_live_numbers_refresh_by_themselves(page, strom):
    topic = f"live-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=rf(strom))])[topic].result(30)
    produce_json(strom.bootstrap, topic, 5)
    page.open(f"/topic/{topic}")
    assert page.text_of('[data-card="records"] .n', "5")
    produce_json(strom.bootstrap, topic, 7)
    # No click, no reload: the page fetches again on its own (every 5 s).
    assert page.text_of('[data-card="records"] .n', "12", timeout=20)


def test_a_read_only_console_refuses_changes(browser, strom_factory):
    node = strom_factory()  # admin.console.write.enable defaults to false
    url = node.admin_url
    req = urllib.request.Request(f"{url}/v1/topics", method="POST",
                                 data=json.dumps({"name": "nope", "partitions": 1}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert "admin.console.write.enable" in json.loads(e.value.read())["error"]
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    assert "nope" not in a.list_topics(timeout=10).topics
    p = Page(browser, url, "read-only")
    p.open("/topics")
    p.find("#topics")
    assert not p.all("#create-topic")
    p.open("/groups")
    p.find("#groups")
    p.shot("read-only")
    browser.get("about:blank")


def test_thousands_of_partitions_page_through(page, strom):
    """A topic of 2,000 partitions: the partition table shows 100 rows a page and pages
    through them (the README has the figures for 10,000)."""
    topic = f"wide-{uuid.uuid4().hex[:6]}"
    a = AdminClient({"bootstrap.servers": strom.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=2000, replication_factor=1)],
                    operation_timeout=60, request_timeout=90)[topic].result(120)
    try:
        page.open(f"/topic/{topic}")
        assert page.text_of('[data-card="partitions"] .n', "2,000", timeout=60)
        assert len(page.all("#partitions tbody tr")) == 100
        assert page.text_of(".pager", lambda t: "page 1 of 20" in t)
        for k in (2, 3):
            page.find(".pager button:last-child").click()
            assert page.text_of(".pager", lambda t, k=k: f"page {k} of 20" in t)
        rows = [r.get_attribute("data-partition") for r in page.all("#partitions tbody tr")]
        assert rows == [str(p) for p in range(200, 300)]
        page.shot("wide")
    finally:
        a.delete_topics([topic], operation_timeout=60)[topic].result(120)
