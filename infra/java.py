"""The command line of a JVM component (Kafka, Kafka Connect) over the jars that `make setup`
builds with infra/jvm/pom.xml."""
from __future__ import annotations

from infra.processes import StackError
from model.settings import REPO_ROOT, Settings

JVM_TARGET = REPO_ROOT / "infra" / "jvm" / "target"


def java_command(settings: Settings, heap_mb: int, main_class: str, *args: str) -> list[str]:
    libs = JVM_TARGET / "kafka-libs"
    if not libs.is_dir():
        raise StackError(f"{libs} is missing: run `make setup` (it runs mvn -f infra/jvm/pom.xml package)")
    return [
        "java", f"-Xms{min(256, heap_mb)}m", f"-Xmx{heap_mb}m", "-XX:+UseSerialGC",
        "-XX:MaxMetaspaceSize=256m", "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{settings.conf_dir / 'log4j.properties'}",
        f"-Dkafka.logs.dir={settings.log_dir}",
        "-cp", f"{libs}/*", main_class, *args,
    ]
