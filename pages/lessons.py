"""Lessons: every lesson in lessons/*.toml, each step a link to the view it opens."""

import streamlit as st

from explorer import state, teaching
from explorer.lessons import LessonError, list_lessons, resolve_step

state.ensure_navigation()
teaching.on_every_page()

st.title("Lessons")
st.markdown(
    "Short guided tours built on the explorer's own views. Each step opens a page with every setting in place; "
    "the lesson bar at the top of that page leads on (previous / next) and asks a question now and then. "
    "A teacher can run any lesson for a class from **Presenter**."
)

try:
    lessons = list_lessons()
except LessonError as exc:
    st.error(" ".join(str(exc).split()))
    lessons = []

for lesson in lessons:
    with st.container(border=True, key=f"lesson_{lesson.name}"):
        st.subheader(lesson.title)
        if lesson.summary:
            st.caption(lesson.summary)
        for k in range(1, len(lesson.steps) + 1):
            step = resolve_step(lesson, k)
            params = dict(step.params, lesson=lesson.name, step=str(k))
            if step.step.hide:
                params["hide"] = ",".join(step.step.hide)
            mark = " · :material/quiz: question" if step.step.question else ""
            st.page_link(teaching.page_file(step.page), label=f"{k}. {step.step.title}{mark}",
                         query_params=params, icon=":material/play_circle:")
        st.page_link("pages/presenter.py", label="Run it for a class (presenter mode)",
                     query_params={"lesson": lesson.name}, icon=":material/co_present:")
