"""Tests for farm.proxy."""
