"""The hand-written material of the quality evaluation set (`build.py` turns it into the shipped JSONL).

PAIRS: English image captions with a faithful Simplified Chinese translation, written for this set. Each names
a count (with a Chinese measure word), most a colour, and the Chinese has two clauses or more, so that every
corruption kind has something to corrupt. They serve three ways: good English captions, good Chinese captions,
and good translations.

JUNK_EN / JUNK_ZH: texts that are no image description, by kind, as web alt text and scraped captions are.
"""

from __future__ import annotations

PAIRS: list[tuple[str, str]] = [
    (
        "Two brown dogs run across a green lawn, one of them carrying a red ball.",
        "两只棕色的狗跑过绿色的草坪，其中一只叼着红色的球。",
    ),
    (
        "A woman in a yellow raincoat walks three small dogs along a wet street.",
        "一位穿黄色雨衣的女人在潮湿的街道上遛三只小狗。",
    ),
    (
        "Four children build a sandcastle on the beach while waves roll in behind them.",
        "四个孩子在海滩上堆沙堡，身后海浪不断涌来。",
    ),
    (
        "A red bicycle leans against a white wall next to two potted plants.",
        "一辆红色的自行车靠在白色的墙上，旁边有两盆盆栽。",
    ),
    (
        "Three men in blue uniforms repair a road, and an orange truck is parked beside them.",
        "三个穿蓝色制服的男人在修路，旁边停着一辆橙色的卡车。",
    ),
    (
        "A black cat sleeps on a grey sofa, with two pillows behind it.",
        "一只黑猫睡在灰色的沙发上，身后放着两个枕头。",
    ),
    (
        "Five white boats are moored in a small harbour under a cloudy sky.",
        "五艘白色的小船停泊在小港口里，天空阴云密布。",
    ),
    (
        "An old man reads a newspaper on a green bench, and a pigeon stands at his feet.",
        "一位老人坐在绿色的长椅上看报纸，一只鸽子站在他的脚边。",
    ),
    (
        "Two girls in pink dresses hold hands and walk through a field of yellow flowers.",
        "两个穿粉色裙子的女孩手拉着手，走过一片黄色的花田。",
    ),
    (
        "A chef in a white hat slices three tomatoes on a wooden board.",
        "一位戴白色帽子的厨师在木砧板上切三个西红柿。",
    ),
    (
        "A blue bus stops at a crowded station, and six people wait to get on.",
        "一辆蓝色的公交车停在拥挤的车站，六个人正等着上车。",
    ),
    (
        "Three horses graze in a green meadow in front of snowy mountains.",
        "三匹马在绿色的草地上吃草，背后是白雪覆盖的群山。",
    ),
    (
        "A man in a black jacket rides a motorcycle down a narrow street lined with shops.",
        "一个穿黑色夹克的男人骑着摩托车驶过一条两旁都是商店的窄街。",
    ),
    (
        "Two cups of coffee and a plate of cookies sit on a round wooden table.",
        "两杯咖啡和一盘饼干放在一张圆形的木桌上。",
    ),
    (
        "A young woman with red hair plays a guitar on a stage, and two lights shine on her.",
        "一位红头发的年轻女子在舞台上弹吉他，两盏灯照在她身上。",
    ),
    (
        "Four ducks swim in a pond, and green trees are reflected in the water.",
        "四只鸭子在池塘里游泳，绿色的树木倒映在水中。",
    ),
    (
        "A yellow taxi waits at a traffic light while three people cross the road.",
        "一辆黄色的出租车在红绿灯前等候，三个人正在过马路。",
    ),
    (
        "A little boy in a blue shirt blows out five candles on a birthday cake.",
        "一个穿蓝色衬衫的小男孩吹灭了生日蛋糕上的五根蜡烛。",
    ),
    (
        "Two cyclists in orange jerseys ride up a steep mountain road.",
        "两名穿橙色骑行服的骑手骑车爬上一条陡峭的山路。",
    ),
    (
        "A white kitchen has a silver fridge, and three apples lie in a bowl on the counter.",
        "白色的厨房里有一台银色的冰箱，台面上的碗里放着三个苹果。",
    ),
    (
        "A brown horse pulls a wooden cart with two farmers along a dirt road.",
        "一匹棕色的马拉着一辆载着两个农民的木车，走在土路上。",
    ),
    (
        "Six students sit around a long table in a library, and each of them reads a book.",
        "六个学生围坐在图书馆的一张长桌旁，每人都在看书。",
    ),
    (
        "A red fire engine is parked in front of a brick building with two open doors.",
        "一辆红色的消防车停在一栋砖楼前，楼上有两扇敞开的门。",
    ),
    (
        "A woman in a green coat buys three loaves of bread at a street market.",
        "一位穿绿色外套的女人在街头集市上买了三条面包。",
    ),
    (
        "Two penguins stand on a white ice floe, and the sea around them is dark blue.",
        "两只企鹅站在白色的浮冰上，周围的海水是深蓝色的。",
    ),
    (
        "A man in a grey suit talks on the phone while holding a black umbrella.",
        "一个穿灰色西装的男人一边打电话，一边撑着一把黑色的雨伞。",
    ),
    (
        "Three kites, one red, one yellow and one blue, fly over a sandy beach.",
        "三只风筝在沙滩上空飞翔，一只红色，一只黄色，一只蓝色。",
    ),
    (
        "A grey elephant sprays water over its back at a river, and two calves stand nearby.",
        "一头灰色的大象在河边往背上喷水，两头小象站在旁边。",
    ),
    (
        "A teacher writes on a green blackboard in front of twenty pupils.",
        "一位老师在二十个学生面前往绿色的黑板上写字。",
    ),
    (
        "Four glasses of orange juice stand on a white tablecloth next to a vase of roses.",
        "四杯橙汁放在白色的桌布上，旁边是一瓶玫瑰花。",
    ),
    (
        "A girl with a yellow umbrella jumps into a puddle, and her two friends laugh.",
        "一个拿着黄色雨伞的女孩跳进水坑，她的两个朋友在笑。",
    ),
    (
        "Two trains wait at a platform under a glass roof, and one of them is red.",
        "两列火车停在玻璃顶棚下的站台旁，其中一列是红色的。",
    ),
    (
        "A fisherman in a small blue boat pulls in a net with three fish.",
        "一个渔夫坐在蓝色的小船上，拉起一张网，网里有三条鱼。",
    ),
    (
        "A golden retriever lies on a wooden floor next to two children playing with blocks.",
        "一只金毛犬躺在木地板上，旁边两个孩子在玩积木。",
    ),
    (
        "Five soldiers in green uniforms march past a white tower.",
        "五名穿绿色军装的士兵走过一座白色的塔。",
    ),
    (
        "A small white dog sits in the basket of a bicycle, and its owner stands beside it.",
        "一只白色的小狗坐在自行车的车筐里，它的主人站在旁边。",
    ),
    (
        "Three pieces of sushi and a cup of green tea are served on a black tray.",
        "三块寿司和一杯绿茶盛在黑色的托盘里。",
    ),
    (
        "An airplane with a red tail takes off from a runway at sunset.",
        "一架红色尾翼的飞机在日落时从跑道上起飞。",
    ),
    (
        "Two women in white aprons bake bread in a stone oven.",
        "两个系着白色围裙的女人在石头烤炉里烤面包。",
    ),
    (
        "A boy kicks a black and white football, and four other boys run after it.",
        "一个男孩踢着一只黑白相间的足球，另外四个男孩追着球跑。",
    ),
    (
        "A brown bear catches a fish in a shallow river, and two birds watch from a rock.",
        "一只棕熊在浅浅的河里抓鱼，两只鸟在岩石上看着。",
    ),
    (
        "A street musician plays the violin next to an open case holding three coins.",
        "一位街头艺人在拉小提琴，旁边打开的琴盒里有三枚硬币。",
    ),
    (
        "Eight yellow chairs stand around a white table in an empty cafe.",
        "八把黄色的椅子围着一张白色的桌子，咖啡馆里空无一人。",
    ),
    (
        "A woman in a red scarf takes a photo of two swans on a lake.",
        "一位戴红色围巾的女人在给湖上的两只天鹅拍照。",
    ),
    (
        "Three green tractors work in a wheat field under a clear blue sky.",
        "三台绿色的拖拉机在麦田里作业，天空湛蓝无云。",
    ),
    (
        "A grey cat watches two goldfish in a glass bowl on a windowsill.",
        "一只灰猫盯着窗台上玻璃鱼缸里的两条金鱼。",
    ),
    (
        "Two climbers in red helmets climb a steep rock face, and a rope hangs below them.",
        "两名戴红色头盔的攀岩者在陡峭的岩壁上攀爬，身下垂着一根绳子。",
    ),
    (
        "A baby in a yellow hat sleeps in a pram, and her mother pushes it through a park.",
        "一个戴黄色帽子的婴儿睡在婴儿车里，她的妈妈推着车穿过公园。",
    ),
    (
        "Four musicians in black suits play on a stage with a red curtain.",
        "四位穿黑色西装的乐手在挂着红色幕布的舞台上演奏。",
    ),
    (
        "A farmer carries two buckets of milk past a white barn.",
        "一个农民提着两桶牛奶走过一座白色的谷仓。",
    ),
    (
        "A blue car is covered in snow, and three icicles hang from its mirror.",
        "一辆蓝色的汽车被雪覆盖，后视镜上挂着三根冰柱。",
    ),
    (
        "Two monks in orange robes walk up the stone steps of a temple.",
        "两位穿橙色僧袍的僧人走上寺庙的石阶。",
    ),
    (
        "A green parrot sits on a man's shoulder, and he feeds it a piece of apple.",
        "一只绿色的鹦鹉站在一个男人的肩膀上，他正在喂它一块苹果。",
    ),
    (
        "Five runners in white shirts cross the finish line of a city marathon.",
        "五名穿白色上衣的跑者冲过城市马拉松的终点线。",
    ),
    (
        "A woman waters three pots of red flowers on a small balcony.",
        "一个女人在小阳台上给三盆红花浇水。",
    ),
    (
        "A black car drives along a coastal road, and two sailboats float on the sea below.",
        "一辆黑色的汽车沿着海边公路行驶，下方的海面上漂着两艘帆船。",
    ),
    (
        "Two boys in blue caps fish from a wooden pier at dawn.",
        "两个戴蓝色帽子的男孩在清晨的木码头上钓鱼。",
    ),
    (
        "A white sheep and three lambs rest in the shade of a large tree.",
        "一只白色的绵羊和三只小羊在一棵大树的树荫下休息。",
    ),
    (
        "A waiter in a black vest carries four plates of pasta to a table.",
        "一位穿黑色马甲的服务员端着四盘意大利面走向一张桌子。",
    ),
    (
        "Two giraffes eat leaves from a tall tree, and a jeep is parked in the grass.",
        "两只长颈鹿在吃一棵高树上的叶子，一辆吉普车停在草丛里。",
    ),
    (
        "A girl in a purple jacket feeds three goats through a wooden fence.",
        "一个穿紫色夹克的女孩隔着木栅栏喂三只山羊。",
    ),
    (
        "A red lantern hangs above a narrow alley, and two bicycles are parked under it.",
        "一盏红灯笼挂在窄巷上方，下面停着两辆自行车。",
    ),
    (
        "Three firefighters in yellow helmets spray water on a burning house.",
        "三名戴黄色头盔的消防员正在向一座着火的房子喷水。",
    ),
    (
        "A woman sits at a desk with two computer screens, and a white mug stands beside the keyboard.",
        "一个女人坐在放着两台电脑显示器的桌前，键盘旁边放着一个白色的杯子。",
    ),
]

JUNK_EN: dict[str, list[str]] = {
    "filename": [
        "IMG_20190412_123456.jpg",
        "DSC_0042.JPG",
        "photo (3).png",
        "Screenshot 2021-03-04 at 10.22.13",
        "final_v2_edit",
        "beach-holiday-2018-027",
        "P1030571",
        "untitled-1 copy",
    ],
    "keywords": [
        "sunset, beach, summer, travel",
        "dog puppy cute pet animal",
        "car, auto, vehicle, red, fast, sports car",
        "wedding bride flowers love",
        "food dinner restaurant delicious",
        "nature landscape mountains hiking outdoor",
        "city night lights urban",
        "kitchen interior design modern home",
    ],
    "advert": [
        "Buy now! 50% off all summer dresses, free shipping worldwide.",
        "Best price guaranteed, order today and save big on our new collection.",
        "Click the link in our bio to shop this look.",
        "Limited offer: two for one on all pizzas this weekend only!",
        "Call now for a free quote, we deliver anywhere in the city.",
        "Get yours today at our online store, use code SAVE20 at checkout.",
        "Premium quality at the lowest prices, visit our shop.",
        "Subscribe to our newsletter for exclusive deals.",
    ],
    "opinion": [
        "This is the best holiday ever, I love it so much!",
        "Honestly the worst hotel we have ever stayed in.",
        "So happy right now, life is good.",
        "I can't believe how amazing this was, highly recommend.",
        "Feeling blessed and grateful for everything.",
        "Not sure what to think about this one, maybe later.",
        "My favourite day of the year, no doubt.",
        "Why does this always happen to me?",
    ],
    "boilerplate": [
        "stock photo",
        "Image may contain: one or more people",
        "All rights reserved.",
        "Click to enlarge",
        "No description available.",
        "Photo courtesy of the author",
        "Image not found",
        "placeholder image",
    ],
    "repetitive": [
        "beautiful beautiful beautiful beautiful beautiful beautiful beautiful beautiful",
        "a dog a dog a dog a dog a dog a dog a dog a dog",
        "nice view nice view nice view nice view nice view nice view",
        "the the the the the the the the the the the the the the the the",
        "wow wow wow wow wow wow wow wow wow wow wow wow",
        "red car red car red car red car red car red car red car red car",
        "so cute so cute so cute so cute so cute so cute so cute so cute",
        "on the table on the table on the table on the table on the table",
    ],
    "short": ["nice", "pic", "ok", "wow!", "yes", "lol", "here", "me"],
    "off_topic": [
        "The meeting has been moved to Thursday at 3 pm.",
        "Quarterly revenue rose four percent on strong demand.",
        "Please remember to submit your expense reports by Friday.",
        "The function returns null when the list is empty.",
        "Interest rates are expected to stay unchanged this year.",
        "Chapter seven explains the history of the printing press.",
        "Our office will be closed on public holidays.",
        "The password must contain at least eight characters.",
    ],
}

JUNK_ZH: dict[str, list[str]] = {
    "filename": [
        "微信图片_20190312101522.jpg",
        "IMG_4410.JPG",
        "截图2021-03-04",
        "新建文件夹(2)",
        "照片 (7).png",
        "下载 (1)",
        "mmexport1558866220333",
        "未命名-1",
    ],
    "keywords": [
        "风景 旅游 夏天 海边",
        "美食，火锅，成都，周末",
        "萌宠 猫咪 可爱",
        "婚纱 摄影 浪漫 鲜花",
        "城市 夜景 灯光",
        "家居 装修 北欧风 客厅",
        "汽车 跑车 红色 速度",
        "登山 户外 自然 徒步",
    ],
    "advert": [
        "限时特价，全场五折，点击链接立即购买！",
        "加微信领取优惠券，包邮到家。",
        "厂家直销，价格最低，欢迎来电咨询。",
        "新品上市，买一送一，先到先得！",
        "关注店铺，下单立减二十元。",
        "正品保证，七天无理由退换。",
        "扫码进群，每天都有福利。",
        "专业装修，免费设计，电话联系。",
    ],
    "opinion": [
        "今天心情特别好，爱了爱了！",
        "这家店真的太难吃了，再也不来了。",
        "太美了吧，我哭死。",
        "人生就是要开心啊。",
        "感觉还行吧，一般般。",
        "谁懂啊，真的绝了！",
        "我最喜欢的一天，没有之一。",
        "为什么每次都是这样？",
    ],
    "boilerplate": [
        "图片来源网络，如有侵权请联系删除",
        "点击查看大图",
        "暂无图片",
        "版权所有",
        "网络图片",
        "图片加载失败",
        "本图片仅供参考",
        "图片来自网络",
    ],
    "repetitive": [
        "好看好看好看好看好看好看好看好看好看好看好看好看",
        "一只狗一只狗一只狗一只狗一只狗一只狗一只狗一只狗",
        "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈",
        "美美美美美美美美美美美美美美美美美美",
        "风景很美风景很美风景很美风景很美风景很美风景很美",
        "红色的车红色的车红色的车红色的车红色的车红色的车",
        "太可爱了太可爱了太可爱了太可爱了太可爱了太可爱了",
        "在桌子上在桌子上在桌子上在桌子上在桌子上在桌子上",
    ],
    "short": ["图", "好", "美", "嗯", "哇", "赞", "无", "图片"],
    "off_topic": [
        "会议改到周四下午三点。",
        "本季度营收同比增长百分之四。",
        "请大家在周五前提交报销单。",
        "列表为空时该函数返回空值。",
        "预计今年利率将保持不变。",
        "第七章讲述了印刷术的历史。",
        "公司在法定节假日放假。",
        "密码至少需要八个字符。",
    ],
}

# what the "something added" corruption appends (a clause the English never mentions)
ADDITIONS = [
    "，远处还有一架直升机",
    "，旁边站着一个警察",
    "，天上正下着大雨",
    "，地上躺着一只熊猫",
    "，背景里有一座红色的灯塔",
    "，桌上还放着一台电视",
    "，后面跟着一群孩子",
    "，空中飘着五个气球",
]
