"""Presenter mode: a teacher starts a room (a short code and a link) and leads the class; students join by code."""

import streamlit as st

from explorer import state, teaching
from explorer.lessons import LessonError, lesson_names, load_lesson
from explorer.rooms import RoomError, room_store

state.ensure_navigation()
teaching.on_every_page()

st.title("Presenter mode")
present = st.session_state.get(teaching.PRESENT_KEY)

if present is None:
    start, join = st.columns(2, gap="large")
    with start.container(border=True):
        st.subheader("Lead a class")
        st.markdown("Start a room: you get a short code and a link. Students who open it follow your view live "
                    "(page, model, image, attack, ε); they can break away and rejoin with one click.")
        if st.button("Start a room", key="room_start", icon=":material/co_present:", type="primary"):
            teaching.start_room()
            st.rerun()
    with join.container(border=True):
        st.subheader("Join a class")
        code = st.text_input("Room code", key="room_code", placeholder="K7Q2MX", max_chars=12)
        if st.button("Join", key="room_join", icon=":material/login:") and code:
            try:
                joined = teaching.join(code)
            except RoomError as exc:
                st.error(" ".join(str(exc).split()))
            else:
                view = room_store().follow(joined).view
                if view is not None:
                    teaching.go_to_view(joined, view)
                st.info(f"You are in room {joined}: the presenter has not shown a view yet. This page follows "
                        "as soon as they do.")
    st.stop()

code, key = present["code"], present["key"]
base = (st.context.url or "").split("?")[0].rsplit("/presenter", 1)[0].rstrip("/")
link = f"{base}/?room={code}"
with st.container(border=True, key="room_card"):
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    c1.metric("Room code", code)
    c2.markdown("Students open this link, or enter the code on this page:")
    c2.code(link, language=None)

st.subheader("Show the class")
names = lesson_names()
wanted = st.query_params.get("lesson")
col_l, col_s = st.columns([2, 1])
lesson_name = col_l.selectbox("Lesson", names, index=names.index(wanted) if wanted in names else 0,
                              key="pr_lesson") if names else None
lesson = None
if lesson_name:
    try:
        lesson = load_lesson(lesson_name)
    except LessonError as exc:
        st.error(" ".join(str(exc).split()))
if lesson is not None:
    n = len(lesson.steps)
    k = int(col_s.number_input("Step", 1, n, value=1, step=1, key="pr_step"))
    step = lesson.step(k)
    st.markdown(f"**Step {k} of {n}: {step.title}**")
    b1, b2, b3 = st.columns(3)
    if b1.button("Show this step to the class", key="pr_show", icon=":material/cast:", type="primary"):
        teaching.push_step(present, lesson.name, k)
        st.session_state["pr_shown"] = f"{lesson.name}:{k}"
        st.toast(f"Step {k} is on the class's screens.")
    b2.page_link(teaching.page_file(step.page), label="Open it here too", icon=":material/open_in_new:",
                 query_params=dict(step.params, lesson=lesson.name, step=str(k)))
    last = teaching.last_view()
    if b3.button("Push my current view", key="pr_push_last", icon=":material/screen_share:", disabled=last is None,
                 help="The last page you had open, with all its settings"):
        teaching.push(present, last)
        st.toast(f"Pushed {last.page}.")

    if step.question is not None:
        qid = f"{lesson.name}:{k}"

        @st.fragment(run_every=2)
        def distribution() -> None:
            try:
                tally = room_store().tally(code, key, qid)
            except RoomError as exc:
                st.caption(" ".join(str(exc).split()))
                return
            st.markdown(f"**Question:** {step.question.prompt}  \n{tally.total} answer(s) so far, anonymous")
            st.bar_chart({"answers": list(tally.counts)}, y_label="answers", horizontal=True)
            for i, (choice, count) in enumerate(zip(step.question.choices, tally.counts)):
                right = " ✓" if i == step.question.answer else ""
                st.caption(f"{choice}{right}: {count}")

        with st.container(border=True, key="pr_question"):
            distribution()

st.divider()
if st.button("End the room", key="room_end", icon=":material/stop_circle:"):
    try:
        room_store().end(code, key)
    except RoomError:
        pass
    st.session_state.pop(teaching.PRESENT_KEY, None)
    st.rerun()
