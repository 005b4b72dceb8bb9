"""The seeds' way, as a baseline: an HTTP service that classifies one JPEG per request.

``python -m bench.single_image_server MODEL.onnx LABELS.txt [--threads N]`` listens on a
free loopback port and prints ``listening on PORT``. Each POST carries one encoded image;
the service decodes and preprocesses it exactly as the workers do, runs onnxruntime at
batch 1 and answers the top-5 as JSON. No batching, no queue: one image at a time.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

TOP_K = 5


class _Classifier:
    def __init__(self, onnx_path: Path, labels: list[str], threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.labels = labels

    def top_k(self, data: bytes) -> list[dict]:
        from podium.core.imaging import decode_rgb, preprocess

        pixels = preprocess(decode_rgb(data))[None]
        probabilities = self.session.run(None, {self.input_name: pixels})[0][0]
        order = probabilities.argsort()[::-1][:TOP_K]
        return [{"label": self.labels[i], "index": int(i), "probability": float(probabilities[i])} for i in order]


def _handler(classifier: _Classifier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the baseline pays no connection set-up
        # Headers and body leave in two writes; with Nagle's algorithm the second waits for
        # the client's delayed ACK (~40 ms), which would slow the baseline down unfairly.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # http.server's naming
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                status, body = 200, {"top_k": classifier.top_k(data)}
            except Exception as exc:  # noqa: BLE001 - a bad image is the client's answer, not a crash
                status, body = 400, {"error": str(exc)}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:  # one line per image would cost time
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.single_image_server", description=__doc__)
    parser.add_argument("model", type=Path, help="the ONNX model file")
    parser.add_argument("labels", type=Path, help="labels.txt, one class per line")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args = parser.parse_args(argv)
    labels = args.labels.read_text().splitlines()
    server = HTTPServer(("127.0.0.1", 0), _handler(_Classifier(args.model, labels, args.threads)))
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
