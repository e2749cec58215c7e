# The Airflow image used by every Airflow service in docker-compose.yaml: the official Airflow 3.3.2 image plus
# the exact provider and library versions this project is tested with (requirements.txt), resolved against
# constraints.txt. dags/, plugins/ (the tidb_pitr package) and include/ are mounted by docker-compose.yaml, not
# copied, so editing them needs no rebuild (restart the triggerer after changing trigger code). For an immutable
# image, COPY them to /opt/airflow/{dags,plugins,include} at the end of this file instead.
# No secrets belong here: they come from .env at run time.
FROM apache/airflow:3.3.2-python3.11

# mysqlclient (the MySQL provider's driver, pinned in constraints.txt) may need building against the MariaDB
# client headers; the runtime image has the library but not them.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb-dev pkg-config gcc \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

# The image's default user is airflow; installing as that user is what the image documentation asks for.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/tidb-pitr/
RUN pip install --no-cache-dir -r /opt/tidb-pitr/requirements.txt -c /opt/tidb-pitr/constraints.txt
