"""Numeric core of clustering_dag: plain NumPy / TensorFlow / scikit-learn code, free of Dagster."""
