"""Rendered bilingual documents (receipt, signs, tables, notice, menu, timetable) and the slots the demo uses."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from dataengine.sample_data.charts import bar_chart, line_chart, pie_chart
from dataengine.sample_data.common import (
    CJK,
    MONTHS,
    PALETTE,
    Doc,
    bi,
    draw_table,
    font,
    header,
    money,
    named,
    unique_extremes,
    yuan,
)

GROCERIES = [
    ("牛奶", "milk", 650),
    ("全麦面包", "wholemeal bread", 1280),
    ("鸡蛋10枚", "10 eggs", 1590),
    ("苹果", "apples", 960),
    ("矿泉水", "mineral water", 200),
    ("原味酸奶", "plain yogurt", 450),
    ("大米5kg", "5 kg rice", 3990),
    ("生抽酱油", "soy sauce", 1350),
    ("香蕉", "bananas", 720),
    ("绿茶饮料", "green tea drink", 350),
]  # Chinese name, English name, unit price in cents
STORES = [("鲜果便利店", "FreshMart"), ("邻家超市", "Neighbour Supermarket"), ("好日子百货", "Good Day Store")]


def receipt(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    store, items = rng.choice(STORES), rng.sample(GROCERIES, rng.randint(4, 7))
    qty = [rng.randint(1, 3) for _ in items]
    amounts = [q * item[2] for q, item in zip(qty, items, strict=True)]
    total, names = sum(amounts), [item[0] if CJK else item[1] for item in items]
    date = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}"
    (w, h), s = size, max(12, size[0] // 20)
    paper_h, margin = s * (13.6 + 1.9 * len(items)), w * 0.08
    img, top = Image.new("RGB", size, "#e9e6df"), max(s / 2, (h - paper_h) / 2)
    draw = ImageDraw.Draw(img)
    draw.rectangle((margin, top, w - margin, top + paper_h), fill="#fffdf7", outline="#cccccc")
    draw.text((w / 2, top + s * 1.6), store[0] if CJK else store[1], font=font(int(s * 1.5)), fill="#111", anchor="mm")
    if CJK:
        draw.text((w / 2, top + s * 3.1), store[1], font=font(s), fill="#444", anchor="mm")
    draw.text((w / 2, top + s * 4.4), date, font=font(int(s * 0.9)), fill="#444", anchor="mm")
    y, left, right = top + s * 5.5, margin + s, w - margin - s
    for line in [None, *range(len(items)), None]:  # None: a rule
        if line is None:
            draw.line((left, y, right, y), fill="#999999", width=2)
            y += s * 0.8
            continue
        draw.text((left, y), names[line], font=font(s), fill="#111")
        draw.text(
            (w * 0.66, y), f"{qty[line]} x {money(items[line][2])}", font=font(int(s * 0.85)), fill="#333", anchor="ra"
        )
        draw.text((right, y), money(amounts[line]), font=font(s), fill="#111", anchor="ra")
        y += s * 1.9
    draw.text((left, y + s * 0.5), bi(("合计", "TOTAL")), font=font(int(s * 1.3)), fill="#111")
    draw.text((right, y + s * 0.5), yuan(money(total)), font=font(int(s * 1.3)), fill="#111", anchor="ra")
    draw.text((w / 2, y + s * 3.6), bi(("谢谢惠顾", "Thank you!")), font=font(int(s * 0.9)), fill="#666", anchor="mm")
    rows = list(zip(names, items, qty, amounts, strict=True))
    en = (
        f"A shop receipt from {named(store)} dated {date}, listing {len(items)} items: "
        + "; ".join(f"{n}{f' ({it[1]})' if CJK else ''} x{q} {yuan(money(a))}" for n, it, q, a in rows)
        + f". The total is {yuan(money(total))}."
    )
    zh = (
        f"一张{store[0] if CJK else store[1]}的购物小票，时间为{date}，共{len(items)}项商品："
        + "；".join(f"{n}×{q}，{yuan(money(a))}" for n, _, q, a in rows)
        + f"。合计{yuan(money(total))}。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": ("What is the total on this receipt?", f"The total is {yuan(money(total))} for {len(items)} items."),
        "qa_zh": ("这张小票的合计金额是多少？", f"合计{yuan(money(total))}，共{len(items)}项商品。"),
    }


STATIONS = [
    ("人民广场", "People's Square"),
    ("南京东路", "East Nanjing Road"),
    ("陆家嘴", "Lujiazui"),
    ("静安寺", "Jing'an Temple"),
    ("徐家汇", "Xujiahui"),
    ("世纪大道", "Century Avenue"),
    ("中山公园", "Zhongshan Park"),
    ("虹桥火车站", "Hongqiao Railway Station"),
]


def metro_sign(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    line, (here, nxt), exit_no = rng.randint(1, 12), rng.sample(STATIONS, 2), rng.randint(1, 8)
    (w, h), color, s = size, PALETTE[line % len(PALETTE)], size[1] // 10
    bg, fg, sub = ("#1e2833", "white", "#d0d8e0") if variant % 2 == 0 else ("#f4f6f8", "#111111", "#445566")
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, h - s * 1.8, w, h), fill=color)
    draw.rounded_rectangle((s, s, s * 4.2, s * 4.2), radius=s * 0.5, fill=color)
    draw.text((s * 2.6, s * 2.6), str(line), font=font(int(s * 2.2)), fill="white", anchor="mm")
    badge = f"{line}号线" if CJK else f"Line {line}"
    draw.text((s * 2.6, s * 5.6), badge, font=font(int(s * 0.8)), fill=fg, anchor="mm")
    if CJK:
        draw.text((s * 6, s * 2.9), here[0], font=font(int(s * 2.4)), fill=fg, anchor="lm")
        draw.text((w - s, s * 4.4), nxt[1], font=font(int(s * 0.75)), fill=sub, anchor="rm")
    draw.text(
        (s * 6, s * (5.2 if CJK else 3.6)), here[1], font=font(int(s * (1.0 if CJK else 1.2))), fill=sub, anchor="lm"
    )
    draw.text((w - s, s * 1.5), bi(("下一站", "Next stop")), font=font(int(s * 0.75)), fill=sub, anchor="rm")
    draw.text((w - s, s * 3.0), nxt[0] if CJK else nxt[1], font=font(int(s * 1.3)), fill=fg, anchor="rm")
    ax = w - s * 1.2 - max(draw.textlength(nxt[0] if CJK else nxt[1], font=font(int(s * 1.3))), s * 4)
    arrow = [(-2.2, -0.3), (-1.2, -0.3), (-1.2, -0.7), (-0.4, 0), (-1.2, 0.7), (-1.2, 0.3), (-2.2, 0.3)]
    draw.polygon([(ax + s * x, s * (3 + y)) for x, y in arrow], fill=color)
    draw.rectangle((s, h - s * 1.5, s * 6.5, h - s * 0.3), fill="#ffd200")
    draw.text(
        (s * 3.75, h - s * 0.9),
        f"{bi(('出口', 'Exit'))} {exit_no}",
        font=font(int(s * 0.8)),
        fill="black",
        anchor="mm",
    )
    en = (
        f"A metro station sign for Line {line}: the current station is {named(here)}, the next stop is "
        f"{named(nxt)}, and a yellow sign at the bottom points to Exit {exit_no}."
    )
    zh = (
        f"地铁{line}号线站牌：本站为{here[0]}（{here[1]}），下一站是{nxt[0]}（{nxt[1]}），"
        f"底部的黄色标志指向{exit_no}号出口。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": ("What is the next stop shown on this sign?", f"The next stop is {named(nxt)}."),
        "qa_zh": ("这是地铁几号线？下一站是哪里？", f"{line}号线，下一站是{nxt[0]}。"),
    }


PLACES = [
    ("火车站", "Railway Station"),
    ("博物馆", "Museum"),
    ("人民医院", "People's Hospital"),
    ("图书馆", "Library"),
    ("体育中心", "Sports Centre"),
    ("机场", "Airport"),
    ("市政府", "City Hall"),
]
DIRECTIONS = [("向左", "to the left", 180), ("直行", "straight ahead", -90), ("向右", "to the right", 0)]


def street_sign(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    places, dirs = rng.sample(PLACES, 3), rng.sample(DIRECTIONS, 3)
    dists = [
        f"{rng.randint(2, 19) * 50} m" if rng.random() < 0.5 else f"{rng.randint(11, 60) / 10:.1f} km" for _ in places
    ]
    (w, h), s = size, min(size) // 16
    img = Image.new("RGB", size, "#f4f4f4")
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((s * 0.5, s * 0.5, w - s * 0.5, h - s * 0.5), radius=s, fill="#1d4f91")
    draw.rounded_rectangle((s, s, w - s, h - s), radius=s * 0.8, outline="white", width=max(2, s // 4))
    rows = list(zip(places, dirs, dists, strict=True))
    for i, (place, (_, _, angle), dist) in enumerate(rows):
        cy, cx, r = h * (0.2 + 0.3 * i), s * 3, s * 1.1
        c, sn = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        arrow = [(-1, -0.3), (0, -0.3), (0, -0.8), (1, 0), (0, 0.8), (0, 0.3), (-1, 0.3)]
        draw.polygon([(cx + r * (x * c - y * sn), cy + r * (x * sn + y * c)) for x, y in arrow], fill="white")
        if CJK:
            draw.text((s * 5, cy - s * 0.5), place[0], font=font(int(s * 1.5)), fill="white", anchor="lm")
        draw.text(
            (s * 5, cy + s * (0.9 if CJK else 0)),
            place[1],
            font=font(int(s * (0.85 if CJK else 1.2))),
            fill="#dfe8f5",
            anchor="lm",
        )
        draw.text((w - s * 1.8, cy - s * 0.5), dist, font=font(s), fill="white", anchor="rm")
    en = (
        "A blue bilingual direction sign with three destinations: "
        + "; ".join(f"{named(p)} {dist} {d[1]}" for p, d, dist in rows)
        + "."
    )
    zh = "一块蓝色双语指路牌，标有三个目的地：" + "；".join(f"{p[0]}{d[0]}{dist}" for p, d, dist in rows) + "。"
    k = rng.randrange(3)
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (
            f"How far is the {places[k][1]} according to the sign, and which way?",
            f"{dists[k]}, {dirs[k][1]}.",
        ),
        "qa_zh": (f"去{places[k][0]}应该往哪个方向走？有多远？", f"{dirs[k][0]}，{dists[k]}。"),
    }


CITIES = [
    ("北京", "Beijing"),
    ("上海", "Shanghai"),
    ("广州", "Guangzhou"),
    ("深圳", "Shenzhen"),
    ("成都", "Chengdu"),
    ("西安", "Xi'an"),
    ("哈尔滨", "Harbin"),
    ("昆明", "Kunming"),
]
WEATHER = [
    ("晴", "sunny"),
    ("多云", "cloudy"),
    ("小雨", "light rain"),
    ("阴", "overcast"),
    ("雷阵雨", "thunderstorms"),
]


def weather_table(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    n = rng.randint(4, 6)
    cities, highs, lows = rng.sample(CITIES, n), rng.sample(range(12, 36), n), [0, 0]
    while not unique_extremes(lows):
        lows = [hi - rng.randint(4, 12) for hi in highs]
    skies, date = [rng.choice(WEATHER) for _ in cities], f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    img, s = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 46, size[1] / ((n + 1) * 2.2 + 5))))
    title = bi(("城市天气预报", "City Weather Forecast"))
    draw, rows = header(img, title, date, s), list(zip(cities, skies, highs, lows, strict=True))
    cells = [[bi(("城市", "City")), bi(("天气", "Weather")), bi(("最高气温", "High")), bi(("最低气温", "Low"))]]
    cells += [[bi(c), bi(wx), f"{hi}°C", f"{lo}°C"] for c, wx, hi, lo in rows]
    colors = ("#2f6690", "white", "#f3f7fa", "#dfe9f1", "#222222")
    draw_table(draw, (s, s * 4.6, size[0] - s, size[1] - s), cells, s, colors)
    hot, cold = highs.index(max(highs)), lows.index(min(lows))
    en = (
        f'A weather table titled "{title}" for {date} with {n} cities: '
        + "; ".join(f"{c[1]} {wx[1]}, high {hi}°C, low {lo}°C" for c, wx, hi, lo in rows)
        + f". {cities[hot][1]} is the hottest ({highs[hot]}°C) and {cities[cold][1]} has the lowest low "
        f"({lows[cold]}°C)."
    )
    zh = (
        f"一张“{title}”表格，日期{date}，共{n}个城市："
        + "；".join(f"{c[0]}{wx[0]}，最高{hi}°C，最低{lo}°C" for c, wx, hi, lo in rows)
        + f"。最高气温最高的是{cities[hot][0]}（{highs[hot]}°C），"
        f"最低气温最低的是{cities[cold][0]}（{lows[cold]}°C）。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (
            "Which city has the highest temperature in the table?",
            f"{cities[hot][1]}, with a high of {highs[hot]}°C.",
        ),
        "qa_zh": ("表中哪个城市的最低气温最低？", f"{cities[cold][0]}，最低气温为{lows[cold]}°C。"),
    }


OUTAGES = [
    (("停水通知", "Water Outage Notice"), ("供水管道维修", "water pipe repairs"), ("停水", "water")),
    (("停电通知", "Power Outage Notice"), ("电力线路检修", "power line maintenance"), ("停电", "power")),
]


def notice(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    (tz, te), (rz, ren), (sz, sen) = OUTAGES[variant % len(OUTAGES)]
    b, m, d = rng.randint(1, 12), rng.randint(3, 11), rng.randint(3, 26)
    t1, t2 = rng.choice(["08:00", "08:30", "09:00"]), rng.choice(["12:00", "15:00", "17:30"])
    when_en, dated_en = f"on {MONTHS[m - 1]} {d} from {t1} to {t2}", f"{MONTHS[m - 1]} {d - 2}"
    if CJK:
        title, sign = tz, ["物业服务中心", f"{m}月{d - 2}日"]
        body = [
            "尊敬的各位业主：",
            f"因{rz}，{b}号楼将于",
            f"{m}月{d}日{t1}至{t2}{sz}。",
            "请各位业主提前做好准备，",
            "给您带来不便，敬请谅解。",
        ]
    else:
        title, sign = te, ["Property Management Office", dated_en]
        body = [
            "Dear residents,",
            f"Due to {ren},",
            f"Building {b} will have no {sen}",
            f"on {MONTHS[m - 1]} {d}, {t1} to {t2}.",
            "Sorry for the inconvenience.",
        ]
    w, s = size[0], size[0] // 20
    img = Image.new("RGB", size, "#fffef6")
    draw = ImageDraw.Draw(img)
    draw.text((w / 2, s * 2.5), title, font=font(s * 2), fill="#c62828", anchor="mm")
    draw.line((s * 1.5, s * 4.3, w - s * 1.5, s * 4.3), fill="#c62828", width=max(2, s // 8))
    for i, text in enumerate(body):
        draw.text(
            (s * (1.5 if i == 0 else 2.7), s * (6 + i * 2.2)),
            text,
            font=font(int(s * (1.15 if CJK else 0.95))),
            fill="#222",
        )
    y = s * (8 + len(body) * 2.2)
    for i, text in enumerate(sign):
        draw.text((w - s * 2, y + i * s * 1.8), text, font=font(int(s * 1.05)), fill="#222", anchor="ra")
    if CJK:  # a red seal over the signature
        half = draw.textlength(sign[0], font=font(int(s * 1.05))) / 2
        cx, cy, r = w - s * 2 - half, y + s * 1.2, max(half + s * 0.3, s * 2.4)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline="#d32f2f", width=max(3, s // 7))
    en = (
        f'A notice in Chinese titled "{tz}" ({te}) from the property management office (物业服务中心): because of '
        f"{ren}, Building {b} will have no {sen} {when_en}; residents are asked to prepare. "
        f"It is dated {m}月{d - 2}日."
        if CJK
        else f'A notice titled "{te}" from the Property Management Office: because of {ren}, Building {b} '
        f"will have no {sen} {when_en}. It is dated {dated_en}."
    )
    zh = (
        f"一张“{title}”：因{rz}，{b}号楼将于{m}月{d}日{t1}至{t2}{sz}，请业主提前做好准备；"
        f"落款为物业服务中心，日期为{m}月{d - 2}日。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (f"When will the {sen} outage in this notice happen, and where?", f"In Building {b}, {when_en}."),
        "qa_zh": (f"通知里说哪栋楼什么时候{sz}？", f"{b}号楼，{m}月{d}日{t1}至{t2}。"),
    }


SHOPS = [("兰州牛肉面馆", "Lanzhou Beef Noodle House"), ("老街小吃店", "Old Street Snack Bar")]
DISHES = [
    ("牛肉拉面", "beef hand-pulled noodles"),
    ("红烧牛腩饭", "braised beef brisket with rice"),
    ("酸辣粉", "hot and sour glass noodles"),
    ("葱油拌面", "scallion oil noodles"),
    ("鸡蛋炒饭", "egg fried rice"),
    ("凉拌黄瓜", "smashed cucumber salad"),
    ("酸梅汤", "sour plum drink"),
    ("煎饺", "pan-fried dumplings"),
]


def menu(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    shop, n = SHOPS[variant % len(SHOPS)], rng.randint(5, 7)
    dishes, prices = rng.sample(DISHES, n), rng.sample(range(6, 49), n)
    (w, h), s = size, size[0] // 18
    gap, big, name_font = min(s * 3.2, (h - s * 6.5) / n), font(int(s * 1.1)), font(int(s * (1.1 if CJK else 0.8)))
    img = Image.new("RGB", size, "#fbf3e4")
    draw = header(img, shop[0] if CJK else "Menu", shop[1], s, color="#8b1e1e")
    draw.line((s, s * 4.4, w - s, s * 4.4), fill="#8b1e1e", width=2)
    for i, (dish, p) in enumerate(zip(dishes, prices, strict=True)):
        y, label = s * 5.5 + i * gap, dish[0] if CJK else dish[1].capitalize()
        draw.text((s * 1.5, y + (0 if CJK else s * 0.25)), label, font=name_font, fill="#222")
        if CJK:
            draw.text((s * 1.5, y + s * 1.35), dish[1], font=font(int(s * 0.7)), fill="#777")
        dots_from = s * 2.1 + draw.textlength(label, font=name_font)
        dots_to = w - s * 1.9 - draw.textlength(yuan(p), font=big)
        for x in np.arange(dots_from, dots_to, s * 0.45):  # dotted leader from name to price
            draw.ellipse((x - 1.5, y + s * 0.8 - 1.5, x + 1.5, y + s * 0.8 + 1.5), fill="#b8a88a")
        draw.text((w - s * 1.5, y), yuan(p), font=big, fill="#8b1e1e", anchor="ra")
    top, low, k = prices.index(max(prices)), prices.index(min(prices)), rng.randrange(n)
    pairs = list(zip(dishes, prices, strict=True))
    en = (
        f"A menu from {named(shop)} listing {n} dishes: "
        + "; ".join(f"{named(d)} {yuan(p)}" for d, p in pairs)
        + f". The most expensive is {dishes[top][1]} at {yuan(prices[top])} and the cheapest is {dishes[low][1]} "
        f"at {yuan(prices[low])}."
    )
    zh = (
        f"{shop[0]}的菜单，共{n}道菜品："
        + "，".join(f"{d[0]}{yuan(p)}" for d, p in pairs)
        + f"。最贵的是{dishes[top][0]}（{yuan(prices[top])}），最便宜的是{dishes[low][0]}（{yuan(prices[low])}）。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (f"How much does the {dishes[k][1]} cost?", f"{yuan(prices[k])}."),
        "qa_zh": ("菜单上最贵的是哪道菜？多少钱？", f"{dishes[top][0]}，{yuan(prices[top])}。"),
    }


DESTINATIONS = [
    ("杭州东", "Hangzhou East"),
    ("南京南", "Nanjing South"),
    ("苏州", "Suzhou"),
    ("北京南", "Beijing South"),
    ("合肥南", "Hefei South"),
    ("宁波", "Ningbo"),
    ("武汉", "Wuhan"),
    ("厦门北", "Xiamen North"),
]


def timetable(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    n = rng.randint(4, 6)
    dests, codes = rng.sample(DESTINATIONS, n), [f"{rng.choice('GD')}{x}" for x in rng.sample(range(100, 3000), n)]
    minute, times = rng.randint(360, 540), []
    for _ in range(n):
        minute += rng.randint(8, 45)
        times.append(f"{minute // 60:02d}:{minute % 60:02d}")
    plats = [rng.randint(1, 12) for _ in range(n)]
    img, s = Image.new("RGB", size, "#101820"), max(12, int(min(size[0] / 46, size[1] / ((n + 1) * 2.0 + 5))))
    title, rows = bi(("列车时刻表", "Train Departures")), list(zip(codes, dests, times, plats, strict=True))
    draw = header(img, title, "", s, color="#ffcc33")
    heads = [("车次", "Train"), ("终点站", "Destination"), ("发车时间", "Departs"), ("站台", "Platform")]
    cells = [[bi(pair) for pair in heads]] + [[c, bi(d), t, str(p)] for c, d, t, p in rows]
    colors = ("#1f5fa8", "white", "#16222e", "#1d2c3b", "#ffcc33")
    draw_table(draw, (s, s * 3.6, size[0] - s, size[1] - s), cells, s, colors)
    k = rng.randrange(n)
    en = (
        f'A train departure board titled "{title}" listing {n} trains: '
        + "; ".join(f"{c} to {named(d)} at {t}, platform {p}" for c, d, t, p in rows)
        + "."
    )
    zh = (
        f"列车时刻表“{title}”，共{n}趟列车："
        + "；".join(f"{c}次开往{d[0]}，{t}发车，{p}号站台" for c, d, t, p in rows)
        + "。"
    )
    return img, {
        "en": en,
        "zh": zh,
        "qa_en": (
            f"When does train {codes[k]} depart, and from which platform?",
            f"{codes[k]} to {dests[k][1]} departs at {times[k]} from platform {plats[k]}.",
        ),
        "qa_zh": (
            f"开往{dests[k][0]}的是哪趟列车？几点从几号站台发车？",
            f"{codes[k]}次，{times[k]}从{plats[k]}号站台发车。",
        ),
    }


RENDERERS: dict[str, tuple[Callable[[random.Random, tuple[int, int], int], Doc], list[tuple[int, int]]]] = {
    "bar": (bar_chart, [(640, 480), (1050, 600), (1920, 1080)]),
    "line": (line_chart, [(800, 600), (1050, 600)]),
    "pie": (pie_chart, [(640, 480), (800, 600)]),
    "receipt": (receipt, [(600, 1000), (800, 1300)]),
    "metro": (metro_sign, [(1200, 400), (900, 300)]),
    "sign": (street_sign, [(448, 448), (600, 600)]),
    "weather": (weather_table, [(640, 480), (1050, 600)]),
    "notice": (notice, [(800, 1100), (600, 820)]),
    "menu": (menu, [(640, 880), (480, 700)]),
    "timetable": (timetable, [(1200, 700), (960, 560)]),
}
DOC_SLOTS = [  # renderer, size, variant, text mode
    ("bar", (1920, 1080), 0, "qa_zh"),
    ("bar", (640, 480), 1, "en"),
    ("bar", (1050, 600), 2, "zh"),
    ("line", (1050, 600), 0, "en"),
    ("line", (800, 600), 1, "qa_en"),
    ("pie", (640, 480), 0, "zh"),
    ("pie", (800, 600), 1, "qa_en"),
    ("receipt", (800, 1300), 0, "qa_zh"),
    ("receipt", (600, 1000), 1, "en"),
    ("metro", (1200, 400), 0, "zh"),
    ("sign", (448, 448), 0, "en"),
    ("weather", (1050, 600), 0, "qa_zh"),
    ("notice", (800, 1100), 0, "zh"),
    ("menu", (640, 880), 0, "en"),
    ("timetable", (1200, 700), 0, "qa_en"),
    ("metro", (900, 300), 1, "en"),
]
