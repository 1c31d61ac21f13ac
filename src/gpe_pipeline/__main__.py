"""gpe-pipeline file for ensuring the package is executable
as `gpe-pipeline` and `python -m gpe_pipeline`
"""

import sys
from pathlib import Path
from typing import Any


def main(*args, **kwargs) -> Any:
    package_name = Path(__file__).parent.name
    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    if sys.argv[1:2] == ["worker"]:  # a machine that trains for another's kedro run; without Kedro (see worker.py)
        from gpe_pipeline.worker import worker

        return worker(sys.argv[2:], prog_name="python -m gpe_pipeline worker", **kwargs)

    # Imported here, not above: the worker's training processes re-import this module and must not configure
    # Kedro's project logging.
    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    configure_project(package_name)
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
