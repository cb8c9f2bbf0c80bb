"""Data: dataset adapters (`adapters`), validation, splits, augmentation, PCA, the
prepared-data format (`prepared`) and the preprocessing shared by training and inference."""
