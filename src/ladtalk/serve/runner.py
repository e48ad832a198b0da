"""One job in its own process (so it can be interrupted or killed, its memory with it):
`python -m ladtalk.serve.runner JOB_DIR` runs JOB_DIR/job.json and writes result.json, or error.json with the CLI's
message. Every tqdm bar the library draws is mirrored into progress.json, for the page to show.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from ladtalk.serve.paths import write_json  # imports no module that binds tqdm


def _mirror_progress(job_dir: Path) -> None:
    """Make every tqdm bar also write progress.json (before ladtalk is imported: modules bind `tqdm` on import)."""
    import tqdm
    import tqdm.auto
    import tqdm.std

    target = job_dir / "progress.json"

    class JobBar(tqdm.std.tqdm):
        def display(self, msg=None, pos=None):
            d = self.format_dict
            write_json(target, {"desc": d.get("prefix") or "", "n": d["n"], "total": d["total"],
                                 "rate": d.get("rate"), "elapsed": d["elapsed"], "unit": d.get("unit", "it"),
                                 "time": time.time()})
            return super().display(msg, pos)

    tqdm.tqdm = tqdm.auto.tqdm = JobBar


def main(job_dir: str) -> int:
    job_dir = Path(job_dir)
    spec = json.loads((job_dir / "job.json").read_text())
    _mirror_progress(job_dir)
    from ladtalk.errors import LadtalkError
    from ladtalk.serve.tasks import TASKS

    try:
        result = TASKS[spec["kind"]](**spec["call"])
    except LadtalkError as e:
        write_json(job_dir / "error.json", {"message": f"ladtalk {spec['kind']}: error: {e}"})
        return 2
    except KeyboardInterrupt:  # the server stopped the job (training saves its checkpoint first)
        return 130
    except Exception as e:  # noqa: BLE001 - the page shows one line; the traceback stays in log.txt
        traceback.print_exc()
        message = (f"ladtalk {spec['kind']}: unexpected error ({type(e).__name__}: {e}); "
                   f"GET /api/jobs/{job_dir.name}/log has the details")
        write_json(job_dir / "error.json", {"message": message})
        return 1
    write_json(job_dir / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
