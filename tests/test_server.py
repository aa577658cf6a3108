"""The REST service over real HTTP on 127.0.0.1: answers, limits, malformed input, the page."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_cli
from newstopic import TextClassifier
from newstopic.predictor import CLASSIFY
from newstopic.server import Limits, ServedModel, bind, create_app, load_models, uvicorn_server

LIMITS = Limits(max_texts=4, max_chars=300, max_body_bytes=20_000)
NEURAL = {"max_words": 300, "max_len": 32, "epochs": 8, "patience": None, "batch_size": 16,
          "learning_rate": 0.01, "embed_dim": 16, "units": 16}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("served")
    TextClassifier(model="tfidf-lr").fit(*corpus).save(root / "lr")
    TextClassifier(model="gru", **NEURAL).fit(*corpus).save(root / "gru")
    return root / "lr", root / "gru"


@contextmanager
def running(app):
    """`app` on uvicorn in a thread, on a free port of 127.0.0.1; yields (host, port)."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def address(model_dirs):
    with running(create_app(load_models(list(model_dirs)), LIMITS)) as address:
        yield address


def request(address, method, path, body=None, headers=None, raw: bytes | None = None):
    """(status, decoded JSON or text) of one HTTP request."""
    connection = http.client.HTTPConnection(*address, timeout=60)
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    is_json = response.getheader("content-type", "").startswith("application/json")
    return response.status, json.loads(text) if is_json else text


def refused(address, path, status, fragment, **kwargs):
    code, answer = request(address, "POST", path, **kwargs)
    assert code == status, answer
    assert set(answer) == {"error"} and fragment in answer["error"], answer["error"]


def test_health_and_models_describe_both_loaded_models(address):
    assert request(address, "GET", "/health") == (200, {"status": "ok", "models": ["lr", "gru"]})
    status, answer = request(address, "GET", "/models")
    assert status == 200
    lr, gru = answer["models"]
    assert (lr["name"], lr["model"], lr["family"]) == ("lr", "tfidf-lr", "classical")
    assert (gru["name"], gru["model"], gru["family"]) == ("gru", "gru", "neural")
    assert lr["labels"] == gru["labels"] == ["cars", "cooking", "space"]
    assert gru["params"]["units"] == 16 and "predict" in gru["can"]
    assert "summarize" not in lr["can"]


def test_predict_labels_a_batch_with_the_default_or_a_named_model(address):
    texts = ["the rocket reached orbit", "garlic butter sauce", "brake and clutch"]
    for model in (None, "gru"):
        status, answer = request(address, "POST", "/predict",
                                 {"texts": texts, "top_k": 2, "model": model})
        assert status == 200, answer
        assert answer["model"] == (model or "lr")
        results = answer["results"]
        assert [r["label"] for r in results] == ["space", "cooking", "cars"]
        for result in results:
            assert len(result["top"]) == 2 and result["top"][0] == [result["label"],
                                                                   result["probability"]]
            assert result["top"][1][1] <= result["probability"] <= 1
    status, answer = request(address, "POST", "/predict", {"texts": ["comet"], "top_k": 99})
    assert status == 200 and len(answer["results"][0]["top"]) == 3  # every label, no more


def test_explain_scores_the_words_of_the_text(address):
    text = "A rocket, a comet and the lunar orbit."
    for model, method in (("lr", "linear"), ("gru", "occlusion")):
        status, answer = request(address, "POST", "/explain",
                                 {"text": text, "top_k": 2, "model": model})
        assert status == 200, answer
        assert (answer["model"], answer["label"], answer["method"]) == (model, "space", method)
        assert all(text[t["start"]:t["end"]] == t["text"] for t in answer["tokens"])
        assert "comet" in [t["text"] for t in answer["tokens"]]
        assert 1 <= len(answer["top"]) <= 2
        assert {t["word"] for t in answer["top"]} <= {"rocket", "comet", "lunar", "orbit"}


def test_limits_answer_413_or_422_saying_what_is_wrong(address):
    refused(address, "/predict", 422, "texts: List should have at most 4 items",
            body={"texts": ["a"] * 5})
    refused(address, "/predict", 422, "texts[1]: String should have at most 300 characters",
            body={"texts": ["a", "b" * 301]})
    refused(address, "/explain", 422, "text: String should have at most 300 characters",
            body={"text": "b" * 301})
    big = json.dumps({"texts": ["word " * 50] * 90}).encode()
    assert len(big) > LIMITS.max_body_bytes
    refused(address, "/predict", 413, "request body over 20,000 bytes", raw=big)
    # a Content-Length over the limit is refused before any of the body is read
    refused(address, "/predict", 413, "over 20,000 bytes", raw=b"",
            headers={"Content-Length": "999999999"})


def test_a_streamed_body_over_the_limit_is_refused_as_it_arrives(address):
    connection = http.client.HTTPConnection(*address, timeout=60)
    chunks = (b'{"texts": ["' if i == 0 else b"x" * 1000 for i in range(30))
    connection.request("POST", "/predict", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 413 and "over 20,000 bytes" in json.loads(response.read())["error"]


@pytest.mark.parametrize("body, fragment", [
    (b'{"texts": ["a"', "malformed JSON at character"),
    (b"", "the body is empty: send a JSON object"),
    (b'["a", "b"]', "the body must be a JSON object"),
    (b'{"texts": "one string"}', "texts: Input should be a valid list"),
    (b'{"texts": ["a", 3]}', "texts[1]: Input should be a valid string"),
    (b'{"texts": []}', "texts: List should have at least 1 item"),
    (b'{"texts": ["a"], "top_k": "3"}', "top_k: Input should be a valid integer"),
    (b'{"texts": ["a"], "top_k": 0}', "top_k: Input should be greater than or equal to 1"),
    (b'{"texts": ["a"], "topk": 3}', "topk: Extra inputs are not permitted"),
    (b'{"text": "a"}', "texts: Field required"),
    (b'{"texts": ["a"], "model": "nope"}', "unknown model 'nope': the loaded models are lr, gru"),
])
def test_malformed_requests_answer_422_naming_the_problem(address, body, fragment):
    refused(address, "/predict", 422, fragment, raw=body)


def test_a_body_that_is_not_json_answers_422(address):
    refused(address, "/explain", 422, "the body must be a JSON object", raw=b"text=rocket",
            headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_summarize_without_a_subject_model_says_so(address):
    refused(address, "/summarize", 404, "no subject model loaded", body={"texts": ["a"]})
    refused(address, "/summarize", 422, "model 'lr' cannot summarize: no subject model is "
            "loaded", body={"texts": ["a"], "model": "lr"})


def test_a_subject_model_is_served_at_summarize(model_dirs, tmp_path):
    from newstopic.artifacts import save_model
    from newstopic.catalog import get_model
    from test_seq2seq import SMALL, keyword_messages

    spec = get_model("seq2seq-attention")
    subject_model = spec.make(0, {**SMALL, "epochs": 3}).fit(
        *keyword_messages(60, seed=0), validation_data=keyword_messages(10, seed=1))
    save_model(subject_model, spec, tmp_path / "subjects", params={"seed": 0, **SMALL})
    bodies = keyword_messages(4, seed=2)[0]
    models = load_models([model_dirs[0], tmp_path / "subjects"])
    with running(create_app(models, LIMITS)) as address:
        status, answer = request(address, "POST", "/summarize", {"texts": bodies})
        assert status == 200 and answer == {"model": "subjects", "results": [
            {"subject": s} for s in subject_model.summarize(bodies)]}
        refused(address, "/predict", 422, "model 'subjects' cannot classify: use lr",
                body={"texts": ["a"], "model": "subjects"})
        status, answer = request(address, "POST", "/predict", {"texts": ["rocket"]})
        assert status == 200 and answer["model"] == "lr"  # the first one able to classify
        status, answer = request(address, "GET", "/models")
        assert [m["can"] for m in answer["models"]] == [["predict", "explain"], ["summarize"]]


def test_page_and_docs_are_served_and_the_page_loads_nothing_from_elsewhere(address):
    status, page = request(address, "GET", "/")
    assert status == 200 and "<textarea" in page and 'id="predict"' in page
    # no external script, style sheet, font or image
    assert "http" not in page and not re.search(r"\b(src|href)\s*=|url\(|@import", page)
    status, docs = request(address, "GET", "/docs")
    assert status == 200 and "swagger" in docs.lower()
    status, schema = request(address, "GET", "/openapi.json")
    assert {"/predict", "/explain", "/summarize", "/health", "/models"} <= set(schema["paths"])


def test_serve_command_listens_on_loopback_and_refuses_bad_setups(model_dirs):
    process = subprocess.Popen([sys.executable, "-m", "newstopic", "serve", "-m", model_dirs[0],
                                "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving lr on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        assert request(("127.0.0.1", port), "GET", "/health")[0] == 200
        taken = run_cli("serve", "-m", model_dirs[0], "--port", port)
        assert_one_line_error(taken, f"cannot listen on 127.0.0.1:{port}", "--port")
    finally:
        process.terminate()
        process.wait(30)
    missing = run_cli("serve", "-m", Path(model_dirs[0]).parent / "absent", "--port", "0")
    assert_one_line_error(missing, "model directory not found")
    twice = run_cli("serve", "-m", model_dirs[0], "-m", model_dirs[0], "--port", "0")
    assert_one_line_error(twice, "two models are named 'lr'")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium: "
                    "apt-get install chromium chromium-driver (.ci/run installs them)")
@pytest.mark.parametrize("viewport", [{"width": 1100, "height": 800},
                                      {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_the_page_in_a_real_browser(address, tmp_path, viewport):
    from playwright.sync_api import sync_playwright

    base = "http://{}:{}".format(*address)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=viewport)
            requested = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(base + "/")
            page.wait_for_selector("#model", state="visible")  # two models loaded: a selector
            assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == [
                "lr", "gru"]
            page.click("#predict")
            assert "Type or paste a text" in page.inner_text("#error")
            page.fill("#input", "The rocket reached orbit.\nAn astronaut saw the lunar comet.")
            page.click("#predict")
            page.wait_for_selector("#text mark")
            assert page.inner_text("#label").startswith("space (")
            assert page.locator(".bars .bar").count() == 3
            marked = page.eval_on_selector_all("#text mark", "ms => ms.map(m => m.textContent)")
            assert {"rocket", "orbit", "lunar", "comet"} & set(marked), marked
            assert page.inner_text("#text").startswith("The rocket reached orbit.\n")
            page.select_option("#model", "gru")
            page.click("#predict")
            page.wait_for_function("document.getElementById('method').textContent"
                                   ".includes('model gru')")
            assert page.inner_text("#label").startswith("space (")
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
            page.screenshot(path=tmp_path / "page.png", full_page=True)
        finally:
            browser.close()
    assert all(url.startswith(base) for url in requested), requested  # nothing from elsewhere
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_loadtest_script_reports_throughput_latency_errors_and_memory(model_dirs):
    script = Path(__file__).parent.parent / "scripts" / "loadtest.py"
    result = subprocess.run([sys.executable, script, "--model", model_dirs[0], "--clients", "2",
                             "--seconds", "1", "--endpoint", "explain", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requests"] > 0 and report["errors"] == 0 and report["clients"] == 2
    assert report["requests_per_second"] > 0
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]
    assert report["peak_rss_mb"] >= report["rss_mb"] > 10


class Gated:
    """A stand-in classifier that holds its first call until released and records batch sizes;
    text "k" gets label k."""

    classes_ = ["zero", "one", "two"]
    capabilities = frozenset({CLASSIFY})

    def __init__(self):
        self.busy, self.release, self.batches = threading.Event(), threading.Event(), []

    def predict_proba(self, texts):
        import numpy as np

        self.busy.set()
        self.release.wait(30)
        self.batches.append(len(texts))
        return np.eye(3)[[int(t) for t in texts]]


def test_requests_that_arrive_while_the_model_is_busy_are_predicted_in_one_batch():
    from concurrent.futures import ThreadPoolExecutor

    model = ServedModel("gated", Gated(), {})
    with running(create_app([model], LIMITS)) as address, ThreadPoolExecutor(5) as pool:
        first = pool.submit(request, address, "POST", "/predict", {"texts": ["0"]})
        assert model.predictor.busy.wait(30)  # the first request is in the model now
        bodies = [{"texts": ["1", "2"]}, {"texts": ["2"]}, {"texts": ["0", "1", "1"]}]
        later = [pool.submit(request, address, "POST", "/predict", body) for body in bodies]
        deadline = time.monotonic() + 30
        while model.worker.jobs.qsize() < len(bodies) and time.monotonic() < deadline:
            time.sleep(0.01)
        model.predictor.release.set()
        assert first.result()[1]["results"][0]["label"] == "zero"
        answers = [future.result()[1]["results"] for future in later]
    assert [[r["label"] for r in results] for results in answers] == [
        ["one", "two"], ["two"], ["zero", "one", "one"]]
    assert model.predictor.batches == [1, 6]  # three requests, one call


class Fussy:
    classes_ = ["zero", "one", "two"]
    capabilities = frozenset({CLASSIFY})

    def predict_proba(self, texts):
        import numpy as np

        from newstopic.errors import NewstopicError

        if "bad" in texts:
            raise NewstopicError("this model cannot read 'bad'")
        return np.eye(3)[[0] * len(texts)]


def test_a_model_error_answers_422_and_the_model_keeps_serving():
    with running(create_app([ServedModel("fussy", Fussy(), {})], LIMITS)) as address:
        refused(address, "/predict", 422, "this model cannot read 'bad'", body={"texts": ["bad"]})
        status, answer = request(address, "POST", "/predict", {"texts": ["fine"]})
        assert status == 200 and answer["results"][0]["label"] == "zero"


def test_serving_a_classical_model_imports_neither_keras_nor_tensorflow(model_dirs):
    code = ("import sys\nfrom newstopic.server import create_app, load_models\n"
            f"create_app(load_models([{str(model_dirs[0])!r}]))\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'sklearn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


def test_only_known_host_names_are_answered(address):
    for host in ("localhost:8000", "127.0.0.1", "[::1]:80"):
        assert request(address, "GET", "/health", headers={"Host": host})[0] == 200
    status, answer = request(address, "GET", "/health", headers={"Host": "evil.example:8000"})
    assert status == 400 and answer == {"error": "this server does not answer to host "
                                                 "'evil.example': start it with --allow-host "
                                                 "evil.example"}


def test_models_show_no_server_paths(address, model_dirs):
    _, answer = request(address, "GET", "/models")
    assert str(model_dirs[0].parent) not in json.dumps(answer)


def test_the_openapi_document_says_what_the_server_answers(address):
    refused(address, "/predict", 422, "the body is not UTF-8 (byte 12)",
            raw=b'{"texts": ["\xff\xfe"]}')
    refused(address, "/predict", 422, "model: String should have at least 1 character",
            body={"texts": ["x"], "model": ""})
    connection = http.client.HTTPConnection(*address, timeout=60)
    connection.request("HEAD", "/")
    assert connection.getresponse().status == 200
    connection.close()
    _, schema = request(address, "GET", "/openapi.json")
    for path in ("/predict", "/explain", "/summarize"):
        assert {"400", "404", "413", "422"} <= set(schema["paths"][path]["post"]["responses"])
    requests = schema["components"]["schemas"]
    model = requests["PredictRequest"]["properties"]["model"]
    assert "minLength" in json.dumps(model)
    # The valid model names are in the schema: unknown ones are schema-invalid, hence 422.
    assert model["enum"] == ["lr", "gru", None]
    assert requests["SummarizeRequest"]["properties"]["model"]["enum"] == [None]
    # JSON Schema's integer includes 2.0, so the server takes it; "2" stays refused.
    status, answer = request(address, "POST", "/predict", {"texts": ["garlic"], "top_k": 2.0})
    assert status == 200 and len(answer["results"][0]["top"]) == 2
    refused(address, "/predict", 422, "top_k", body={"texts": ["garlic"], "top_k": "2"})
    refused(address, "/predict", 422, "top_k", body={"texts": ["garlic"], "top_k": 2.5})


def test_texts_without_a_known_word_are_marked(address):
    status, answer = request(address, "POST", "/predict", {"texts": ["garlic", "zzz qqq"]})
    assert status == 200 and [r["known_words"] for r in answer["results"]] == [True, False]
    for text, known in (("garlic", True), ("zzz qqq", False)):
        status, answer = request(address, "POST", "/explain", {"text": text})
        assert status == 200 and answer["known_words"] is known
