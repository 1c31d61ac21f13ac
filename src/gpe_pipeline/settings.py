"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

import warnings

from gpe_pipeline.hooks import BuildParametersHook, MlflowRunsHook, PlanHook, ProjectMlflowHook, RunContextHook, RunParametersHook

# Third-party deprecation chatter that says nothing about this project's run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method", category=UserWarning)

# Instantiated project hooks. pluggy calls the last registered first: kedro-mlflow's run opens before the others
# (ProjectMlflowHook is kedro-mlflow's hook without its per-node parameter logging, so its own registration is off).
# PlanHook and MlflowRunsHook run last (trylast), the plan first: both read RunParametersHook's merged sections.
RUN_PARAMETERS = RunParametersHook()
HOOKS = (BuildParametersHook(), RUN_PARAMETERS, MlflowRunsHook(RUN_PARAMETERS), PlanHook(RUN_PARAMETERS), RunContextHook(), ProjectMlflowHook())

# Installed plugins for which to disable hook auto-registration.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")  # its metadata spells it kedro_mlflow

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/test, conf/mnist ...) overrides single keys and keeps the rest of conf/base.
    "merge_strategy": {"parameters": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
