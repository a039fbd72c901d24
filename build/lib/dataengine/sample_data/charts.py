"""Rendered charts (bar, line, pie) whose captions state their exact values."""

from __future__ import annotations

import random

from PIL import Image

from dataengine.sample_data.common import (
    CJK,
    MONTHS,
    PALETTE,
    Doc,
    axes,
    bi,
    font,
    header,
    two_line,
    unique_extremes,
)

# ---------------------------------------------------------------- documents: (rng, size, variant) -> image, texts
BAR_THEMES = [  # title, unit, category noun, categories, value range
    (
        ("季度销售额", "Quarterly Sales"),
        ("万元", "10,000 CNY"),
        ("季度", "quarter"),
        [("第一季度", "Q1"), ("第二季度", "Q2"), ("第三季度", "Q3"), ("第四季度", "Q4")],
        120,
        480,
    ),
    (
        ("各城市年降水量", "Annual Rainfall by City"),
        ("毫米", "mm"),
        ("城市", "city"),
        [("北京", "Beijing"), ("上海", "Shanghai"), ("广州", "Guangzhou"), ("成都", "Chengdu"), ("哈尔滨", "Harbin")],
        400,
        1900,
    ),
    (
        ("学生最喜欢的水果", "Students' Favourite Fruit"),
        ("人", "students"),
        ("水果", "fruit"),
        [
            ("苹果", "Apple"),
            ("香蕉", "Banana"),
            ("橙子", "Orange"),
            ("葡萄", "Grape"),
            ("西瓜", "Watermelon"),
            ("草莓", "Strawberry"),
        ],
        5,
        60,
    ),
]


def bar_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    (tz, te), (uz, ue), (nz, ne), labels, lo, hi = BAR_THEMES[variant % len(BAR_THEMES)]
    cats = labels if len(labels) <= 4 else rng.sample(labels, rng.randint(3, len(labels)))
    vals = rng.sample(range(lo, hi + 1), len(cats))
    img, s, title = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 34, size[1] / 22))), bi((tz, te))
    draw = header(img, title, f"单位 Unit: {uz} / {ue}" if CJK else f"Unit: {ue}", s)
    box = (s * 4.5, s * 4.8, size[0] - s * 1.5, size[1] - s * (3.4 if CJK else 2.2))
    y_of, slot = axes(draw, box, max(vals) * 1.12, s), (box[2] - box[0]) / len(cats)
    for i, (pair, v) in enumerate(zip(cats, vals, strict=True)):
        cx = box[0] + slot * (i + 0.5)
        draw.rectangle((cx - slot * 0.3, y_of(v), cx + slot * 0.3, box[3]), fill=PALETTE[i])
        draw.text((cx, y_of(v) - s * 0.3), str(v), font=font(int(s * 0.9)), fill="#222222", anchor="md")
        two_line(draw, cx, box[3] + s * 0.4, pair, int(s * 0.85))
    top, low = vals.index(max(vals)), vals.index(min(vals))
    pairs = list(zip(cats, vals, strict=True))
    en = (
        f'A bar chart titled "{title}" comparing {len(cats)} {ne} values in {ue}: '
        + "; ".join(f"{p[1]} {v}" for p, v in pairs)
        + f". The highest is {cats[top][1]} at {vals[top]} and the lowest is {cats[low][1]} at {vals[low]}."
    )
    zh = (
        f"柱状图“{title}”，比较了{len(cats)}个{nz}的数值（单位：{uz}）："
        + "，".join(f"{p[0]}{v}" for p, v in pairs)
        + f"。最高的是{cats[top][0]}（{vals[top]}），最低的是{cats[low][0]}（{vals[low]}）。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (
            f"Which {ne} has the highest value in the chart, and what is it?",
            f"{cats[top][1]}, with {vals[top]} ({ue}).",
        ),
        "qa_zh": (f"图中哪个{nz}的数值最高？是多少？", f"{cats[top][0]}最高，为{vals[top]}{uz}。"),
    }


LINE_THEMES = [
    (("月平均气温", "Average Monthly Temperature"), ("°C", "°C"), 4, 33),
    (("网站月访问量", "Monthly Website Visits"), ("千次", "thousand visits"), 20, 240),
]


def line_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    (tz, te), (uz, ue), lo, hi = LINE_THEMES[variant % len(LINE_THEMES)]
    n = rng.randint(6, 12)
    first, vals = rng.randint(1, 13 - n), [0, 0]
    while not unique_extremes(vals):  # a random walk with one clear peak and one clear low
        vals = [rng.randint(lo, hi)]
        for _ in range(n - 1):
            vals.append(min(hi, max(lo, vals[-1] + rng.randint(-(hi - lo) // 5, (hi - lo) // 5))))
    months = [(f"{m}月", MONTHS[m - 1]) for m in range(first, first + n)]
    img, s, title = Image.new("RGB", size, "#fcfcfc"), max(12, int(min(size[0] / 36, size[1] / 22))), bi((tz, te))
    draw = header(img, title, f"单位 Unit: {uz}" if CJK and uz != ue else f"Unit: {ue}", s)
    box, color = (s * 4.5, s * 4.8, size[0] - s * 1.5, size[1] - s * (3.4 if CJK else 2.2)), PALETTE[variant % 4]
    y_of, slot = axes(draw, box, max(vals) * 1.15, s), (box[2] - box[0]) / n
    pts = [(box[0] + slot * (i + 0.5), y_of(v)) for i, v in enumerate(vals)]
    draw.line(pts, fill=color, width=max(2, s // 6), joint="curve")
    for (x, y), v, pair in zip(pts, vals, months, strict=True):
        r = max(3, s // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill="white", outline=color, width=2)
        draw.text((x, y - s * 0.45), str(v), font=font(int(s * 0.75)), fill="#222222", anchor="md")
        two_line(draw, x, box[3] + s * 0.4, pair, int(s * 0.8))
    top, low, pairs = vals.index(max(vals)), vals.index(min(vals)), list(zip(months, vals, strict=True))
    en = (
        f'A line chart titled "{title}" showing {n} months from {months[0][1]} to {months[-1][1]} ({ue}): '
        + ", ".join(f"{m[1]} {v}" for m, v in pairs)
        + f". The peak is in {months[top][1]} ({vals[top]}) and the lowest point in {months[low][1]} ({vals[low]})."
    )
    zh = (
        f"折线图“{title}”，展示了{months[0][0]}至{months[-1][0]}共{n}个月的数据（单位：{uz}）："
        + "，".join(f"{m[0]}{v}" for m, v in pairs)
        + f"。最高点在{months[top][0]}（{vals[top]}），最低点在{months[low][0]}（{vals[low]}）。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": ("In which month is the value lowest, and what is it?", f"{months[low][1]}, at {vals[low]} {ue}."),
        "qa_zh": ("图中哪个月的数值最高？", f"{months[top][0]}最高，为{vals[top]}{uz}。"),
    }


PIE_THEMES = [
    (
        ("员工通勤方式", "How Employees Commute"),
        [("地铁", "Metro"), ("公交", "Bus"), ("自行车", "Bicycle"), ("步行", "Walking"), ("驾车", "Car")],
    ),
    (
        ("家庭月支出构成", "Monthly Household Spending"),
        [("住房", "Housing"), ("食品", "Food"), ("交通", "Transport"), ("教育", "Education"), ("娱乐", "Leisure")],
    ),
]


def pie_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    title_pair, labels = PIE_THEMES[variant % len(PIE_THEMES)]
    cats, shares = rng.sample(labels, rng.randint(3, 5)), [0]
    while min(shares) < 5 or shares.count(max(shares)) > 1:  # whole percentages, one clear largest slice
        cuts = sorted(rng.sample(range(1, 100), len(cats) - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    img, s, title = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 34, size[1] / 22))), bi(title_pair)
    draw = header(img, title, "", s)
    d = min(size[1] - s * 5, size[0] * 0.48)
    x0, y0, start = s * 1.5, (size[1] + s * 3 - d) / 2, -90.0
    for i, (pair, p) in enumerate(zip(cats, shares, strict=True)):
        draw.pieslice((x0, y0, x0 + d, y0 + d), start, start + p * 3.6, fill=PALETTE[i], outline="white", width=2)
        start += p * 3.6
        lx, ly = x0 + d + s * 1.5, y0 + d / 2 + (i - len(cats) / 2) * s * 1.6
        draw.rectangle((lx, ly, lx + s, ly + s), fill=PALETTE[i])
        draw.text((lx + s * 1.5, ly + s / 2), f"{bi(pair)}  {p}%", font=font(s), fill="#222222", anchor="lm")
    top, ask, pairs = shares.index(max(shares)), rng.randrange(len(cats)), list(zip(cats, shares, strict=True))
    en = (
        f'A pie chart titled "{title}" with {len(cats)} slices: '
        + ", ".join(f"{p[1]} {v}%" for p, v in pairs)
        + f". The largest share is {cats[top][1]} ({shares[top]}%)."
    )
    zh = (
        f"饼图“{title}”，共{len(cats)}个部分："
        + "，".join(f"{p[0]}{v}%" for p, v in pairs)
        + f"。占比最大的是{cats[top][0]}（{shares[top]}%）。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (f"What percentage is {cats[ask][1]}?", f"{cats[ask][1]} is {shares[ask]}%."),
        "qa_zh": ("图中占比最大的是哪一项？", f"{cats[top][0]}，占{shares[top]}%。"),
    }
