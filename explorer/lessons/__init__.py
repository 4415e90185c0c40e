"""Lessons as data (``lessons/*.toml``): the format, the loader with validation, and lesson links.
See ``model.py`` for the file format."""

from explorer.lessons.model import (
    LESSONS_DIR,
    Lesson,
    LessonError,
    LessonQuestion,
    Offline,
    ResolvedStep,
    Step,
    lesson_names,
    list_lessons,
    load_lesson,
    parse_hide,
    resolve_step,
    view_url,
)
from explorer.lessons.params import PAGE_PARAMS, app_pages, controls, known_params

__all__ = ["LESSONS_DIR", "PAGE_PARAMS", "Lesson", "LessonError", "LessonQuestion", "Offline", "ResolvedStep",
           "Step", "app_pages", "controls", "known_params", "lesson_names", "list_lessons", "load_lesson",
           "parse_hide", "resolve_step", "view_url"]
