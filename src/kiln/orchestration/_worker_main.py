"""Entry point of a worker process: ``python -m kiln.orchestration._worker_main``."""

from kiln.orchestration._worker import serve

if __name__ == "__main__":
    serve()
