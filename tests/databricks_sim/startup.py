"""IPython startup file of the simulated Databricks notebook kernel (copied to ``profile_default/startup/``).

It does what Databricks does before a notebook's first cell runs: a Spark session already exists
(``spark``, app name "Databricks Shell") and ``dbutils`` is in the namespace. Here the session is a local
``local[2]`` one on 127.0.0.1 with no UI and quiet logging, and ``dbutils`` only has the notebook widgets
the kit uses (``text``, ``get``, ``getAll``). Nothing else of Databricks is imitated in the kernel.
"""

# ruff: noqa: T201 - runs inside the simulated kernel
import os as _os
import sys as _sys


def _databricks_session():
    from pyspark.sql import SparkSession

    _os.environ.setdefault("PYSPARK_PYTHON", _sys.executable)
    _os.environ.setdefault("PYSPARK_DRIVER_PYTHON", _sys.executable)
    _os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log4j = _os.environ["DATABRICKS_SIM_LOG4J"]
    scratch = _os.environ["DATABRICKS_SIM_SCRATCH"]
    options = f"-Dlog4j.configurationFile=file:{log4j} -XX:TieredStopAtLevel=1"
    builder = (
        SparkSession.builder.master("local[2]").appName("Databricks Shell")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g").config("spark.driver.extraJavaOptions", options)
        .config("spark.sql.shuffle.partitions", "4").config("spark.default.parallelism", "2")
        .config("spark.local.dir", f"{scratch}/tmp").config("spark.sql.warehouse.dir", f"{scratch}/warehouse")
        .config("spark.sql.session.timeZone", "UTC")
    )
    # The JVM's start-up chatter goes to a log file, as a notebook's driver logs do, not into cell outputs.
    _os.makedirs(scratch, exist_ok=True)
    _sys.stderr.flush()
    saved = _os.dup(2)
    with open(f"{scratch}/driver.log", "ab") as sink:
        _os.dup2(sink.fileno(), 2)
        try:
            session = builder.getOrCreate()
        finally:
            _os.dup2(saved, 2)
            _os.close(saved)
    # A level the kit never sets (it sets ERROR on sessions it builds itself): the test reads it back at the end
    # to show that the kit left Databricks' session as it found it (databricks_sim.LOG_LEVEL).
    session.sparkContext.setLogLevel(_os.environ["DATABRICKS_SIM_LOG_LEVEL"])
    return session


class _InputWidgetNotDefined(Exception):
    """What Databricks raises for a missing widget (there: a py4j error naming InputWidgetNotDefined)."""


class _Widgets:
    def __init__(self):
        self._values = {}

    def text(self, name, defaultValue, label=None):  # noqa: N803 - Databricks' parameter name
        self._values.setdefault(name, str(defaultValue))

    def get(self, name):
        if name not in self._values:
            raise _InputWidgetNotDefined(f"InputWidgetNotDefined: No input widget named {name} is defined")
        return self._values[name]

    def getAll(self):  # noqa: N802 - Databricks' method name
        return dict(self._values)


class _ScalaNone:
    """Scala's ``None`` as py4j hands it over: an empty ``Option``."""

    def isDefined(self):  # noqa: N802 - Scala's Option API
        return False

    def isEmpty(self):  # noqa: N802
        return True

    def get(self):
        raise LookupError("None.get")  # java.util.NoSuchElementException in Databricks

    def __repr__(self):
        return "None"


class _ScalaMap:
    """An empty ``Map[String, String]``: every lookup is ``None``."""

    def get(self, key):
        return _ScalaNone()


class _CommandContext:
    """The notebook's command context, empty: no notebook id or path, no API URL or token, no tags.

    Every getter of Databricks' ``CommandContext`` returns an ``Option`` (or a map for tags and extra context).
    """

    def tags(self):
        return _ScalaMap()

    def extraContext(self):  # noqa: N802
        return _ScalaMap()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda: _ScalaNone()


class _JavaNotebookUtils:
    def getContext(self):  # noqa: N802
        return _CommandContext()


class _JavaDbutils:
    def notebook(self):
        return _JavaNotebookUtils()


class _DriverConf:
    def workflowSslTrustAll(self):  # noqa: N802
        return False


class _EntryPoint:
    """``dbutils.entry_point``: what MLflow reads from the JVM side when imported in a Databricks runtime
    (``mlflow.utils.databricks_utils``) and when it tags a run. Nothing else is answered."""

    def getDbutils(self):  # noqa: N802
        return _JavaDbutils()

    def getJobGroupId(self):  # noqa: N802
        return None

    def getDriverConf(self):  # noqa: N802
        return _DriverConf()


class _Notebook:
    def __init__(self):
        self.entry_point = _EntryPoint()


class _DBUtils:
    """The part of ``dbutils`` the kit touches (notebook widgets), and the empty command context MLflow reads."""

    def __init__(self):
        self.widgets = _Widgets()
        self.notebook = _Notebook()
        self.entry_point = _EntryPoint()

    def __repr__(self):
        return "<simulated dbutils: widgets only>"


spark = _databricks_session()
_databricks_sim_session = spark  # the lesson rebinds `spark`; the test compares the kit's session with this one
dbutils = _DBUtils()
del _databricks_session
