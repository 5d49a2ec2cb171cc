// zh-CN by default; English toggle. Static text carries data-i18n="key"; dynamic text calls t().
export const DICT = {
  zh: {
    slogan: "一屏知全域 · 一网管全局", hub: "中枢", broker: "消息", store: "存储", live: "实时",
    operator_panel: "调度台", login: "登录", logout: "退出", lang_toggle: "EN",
    kpi_cameras: "摄像头在线", kpi_speakers: "广播终端在线", kpi_broadcasts: "今日广播", kpi_alarms: "未处理告警",
    kpi_villages: "行政村", times: "次", items: "条", villages_unit: "个",
    playing_now: "正在播放 {n} 项", critical_n: "其中紧急 {n} 条", villages_sub: "{bad} 个村有告警或离线",
    map: "全域态势", legend_ok: "正常", legend_warn: "告警/部分离线", legend_bad: "紧急告警/大面积离线", legend_unknown: "未知",
    map_pick: "点击地图上的村以选择播放范围",
    camera_wall: "视频调度", all_villages: "全部村", tour_on: "轮巡中", tour_off: "轮巡已停", tour_paused: "告警暂停",
    page: "第 {p}/{n} 页", no_cameras: "没有摄像头", no_image: "暂无画面",
    offline: "离线", stale: "画面过期", unknown: "未知", online: "在线",
    health_dark: "过暗", health_blurred: "模糊", health_covered: "遮挡", health_frozen: "画面冻结", health_moved: "移位", health_stale: "过期", health_ok: "正常",
    speakers: "应急广播", now_playing: "正在播放", today_timeline: "今日节目", next_up: "即将播放",
    nothing_playing: "当前无播放", nothing_next: "暂无排程",
    history_24h: "24小时趋势", online_rate: "在线率", cameras: "摄像头", speakers_s: "广播终端", heartbeat_loss: "心跳丢失",
    heartbeats: "心跳", lost: "丢失",
    alarms: "告警中心", no_alarms: "暂无告警", ack: "确认", acked_by: "{who} 已确认", open_n: "{n} 条未处理",
    sev_critical: "紧急", sev_warning: "警告", sev_info: "提示",
    request_snapshot: "立即抓拍", snapshot_requested: "已请求抓拍", last_seen: "最后在线", village: "村", group: "村民组",
    status: "状态", health: "画面", device: "设备", kind: "类型", reason: "原因", ago_s: "{n}秒前", ago_m: "{n}分钟前", ago_h: "{n}小时前", ago_d: "{n}天前",
    login_title: "登录 VillageHub", login_help: "请输入 API 令牌（由管理员通过 villagehub token create 生成）。",
    login_bad: "令牌无效", login_needed: "需要登录才能查看",
    role_viewer: "值班员", role_operator: "调度员", role_admin: "管理员",
    tab_schedule: "广播排程", tab_list: "广播列表",
    bc_title: "标题", bc_text: "播报内容（语音合成）", bc_targets: "播放范围（可在地图上点选村）", all_township: "全乡",
    bc_start: "开始时间（留空为立即）", bc_recurrence: "重复", bc_priority: "优先级", bc_volume: "音量", bc_repeat: "播放遍数",
    bc_submit: "提交排程", bc_emergency: "紧急广播", bc_created: "已创建广播 {id}", bc_created_at: "已创建广播 {id}，首次播放 {at}", bc_no_targets: "请选择播放范围",
    bc_cancel: "取消广播", bc_cancelled: "已取消 {id}", bc_empty: "暂无广播",
    rec_once: "不重复", rec_daily: "每天", rec_weekdays: "工作日", rec_weekly: "每周", rec_daily7: "每天，共7次", rec_hourly3: "每小时，共3次",
    prio_n: "{n} 级", prio_emergency: "{n} 级（紧急）",
    confirm_emergency_title: "确认发布紧急广播", confirm_emergency_help: "紧急广播将立即打断所有较低优先级的播放，并忽略静默时段。",
    confirm_text: "「{title}」将以优先级 {p} 在 {targets} 立即播放。", cancel: "取消", confirm_go: "确认发布",
    link_lost: "⚠ 与中枢的实时连接已中断，正在重连…（{n} 秒后重试）", link_connecting: "正在连接中枢…",
    vendor_missing: "图表库未安装：请管理员在 dashboards/ 目录运行 npm ci",
    error: "错误：{msg}", forbidden: "权限不足",
    state_pending: "待发", state_sent: "已发", state_received: "已收到", state_playing: "播放中", state_done: "完成", state_failed: "失败",
    state_rejected: "拒绝", state_preempted: "被打断", state_expired: "过期", state_offline: "离线", state_scheduled: "已排程", state_cancelled: "已取消",
    state_active: "进行中", state_completed: "已完成", state_finished: "已结束", state_fired: "已播", state_missed: "错过",
    // issue 14: problem ledger, ranking, street lights
    ledger: "整改台账", ledger_open_n: "{n} 项在办", overdue_n: "超期 {n}", overdue: "超期", only_overdue: "仅看超期",
    kpi_lights: "路灯在线", kpi_problems: "整改在办", lights_sub: "亮灯 {on} · 故障 {fault}", problems_sub: "超期 {n} 项",
    pb_state_open: "待交办", pb_state_assigned: "整改中", pb_state_fixed: "已整改", pb_state_verified: "已验收", pb_state_closed: "已销号", pb_state_rejected: "已驳回",
    pb_cat_environment: "人居环境", pb_cat_device_fault: "设备故障", pb_cat_safety: "安全隐患", pb_cat_sanitation: "环境卫生", pb_cat_other: "其他",
    pb_all_states: "全部状态", pb_all_villages: "全部村", pb_export_csv: "导出CSV", pb_export_xlsx: "导出Excel", pb_empty: "暂无整改事项",
    pb_id: "编号", pb_title: "问题", pb_category: "类别", pb_owner: "责任人", pb_deadline: "整改期限", pb_state: "状态", pb_created: "立案",
    pb_description: "问题描述", pb_created_by: "立案人", pb_before: "整改前", pb_after: "整改后", pb_no_photo: "暂无照片", pb_history: "办理记录",
    pb_back: "返回列表", pb_note: "办理意见", pb_to_assigned: "交办", pb_to_fixed: "标记已整改", pb_to_verified: "验收通过", pb_to_closed: "销号",
    pb_rework: "返工", pb_to_rejected: "驳回", pb_after_photo: "抓拍整改后照片", pb_after_pending: "已请求抓拍，照片到达后自动附上", pb_after_added: "已附整改后照片",
    pb_from_alarm: "转整改", pb_from_camera: "转为整改问题", pb_filed: "已立案 {id}", pb_create_title: "新建整改问题", pb_create: "立案",
    pb_with_before: "附该摄像头最新抓拍作为整改前照片", pb_created_ok: "已立案 {id}", pb_moved: "{id} → {state}", pb_need_owner: "交办需填写责任人和期限",
    pb_history_row: "{from} → {to}", pb_created_row: "立案", pb_source_camera: "摄像头抓拍", pb_source_upload: "上传",
    ranking: "村庄排名", red_list: "红榜", black_list: "黑榜", print_ranking: "打印榜单", rk_score: "综合得分", rk_rank: "名次", rk_village: "村",
    rk_trend: "趋势", rk_trend_up: "↑", rk_trend_down: "↓", rk_trend_same: "—", rk_trend_new: "新", rk_prev: "上期第 {n} 名", rk_no_data: "暂无排名",
    rk_availability: "设备在线率", rk_alarm_ack: "告警及时确认率", rk_problems_on_time: "整改按期办结率", rk_broadcast_delivery: "广播送达率", rk_weight: "权重",
    rk_title: "{township} {period} 村庄综合评分排名", rk_posting: "张榜公示", rk_posted_by: "{township}人民政府", rk_method: "评分说明：综合得分 = Σ 各项得分 × 权重（{weights}）；无数据的项目按 100 分计。数据由 VillageHub 自动采集，计算时间 {at}。",
    rk_period: "考核期", rk_print: "打印", rk_login: "请先在大屏登录后再打开本页。", rk_hint: "点击村名查看得分构成",
    lights: "路灯", lights_panel: "智慧路灯", lamp_layer: "路灯图层", lamp_on: "亮灯", lamp_off: "熄灭", lamp_fault: "故障", lamp_offline: "离线",
    lt_summary: "在线 {online}/{total} · 亮灯 {on} · 故障 {fault}", lt_sun: "今日日落 {set} · 日出 {rise}", lt_target: "控制范围", lt_all: "全乡路灯",
    lt_all_lamps: "本村全部路灯", lt_level: "亮度", lt_cmd_on: "开灯", lt_cmd_off: "关灯", lt_cmd_dim: "调光", lt_sent: "已下发 {n} 盏",
    lt_progress: "执行进度", lt_no_cmd: "暂无控制指令", lt_done_n: "完成 {done}/{total}", lt_villages: "各村路灯", lt_lamps: "路灯列表",
    lt_battery: "电量", lt_power: "功率", lt_solar: "太阳能", lt_mains: "市电", lt_action_on: "开灯", lt_action_off: "关灯", lt_action_dim: "调光", lt_action_set_schedule: "设定时段",
  },
  en: {
    slogan: "One screen, the whole township", hub: "Hub", broker: "Broker", store: "Store", live: "Live",
    operator_panel: "Operator", login: "Log in", logout: "Log out", lang_toggle: "中文",
    kpi_cameras: "Cameras online", kpi_speakers: "Speakers online", kpi_broadcasts: "Broadcasts today", kpi_alarms: "Open alarms",
    kpi_villages: "Villages", times: "", items: "", villages_unit: "",
    playing_now: "{n} playing now", critical_n: "{n} critical", villages_sub: "{bad} with alarms or outages",
    map: "Township", legend_ok: "OK", legend_warn: "Alarm / some offline", legend_bad: "Critical / outage", legend_unknown: "Unknown",
    map_pick: "Click villages on the map to target them",
    camera_wall: "Cameras", all_villages: "All villages", tour_on: "Touring", tour_off: "Tour off", tour_paused: "Paused: alarm",
    page: "page {p}/{n}", no_cameras: "No cameras", no_image: "No image yet",
    offline: "OFFLINE", stale: "STALE", unknown: "unknown", online: "online",
    health_dark: "dark", health_blurred: "blurred", health_covered: "covered", health_frozen: "frozen", health_moved: "moved", health_stale: "stale", health_ok: "ok",
    speakers: "Loudspeakers", now_playing: "Now playing", today_timeline: "Today", next_up: "Next up",
    nothing_playing: "Nothing playing", nothing_next: "Nothing scheduled",
    history_24h: "Last 24 h", online_rate: "Online rate", cameras: "Cameras", speakers_s: "Speakers", heartbeat_loss: "Heartbeat loss",
    heartbeats: "heartbeats", lost: "lost",
    alarms: "Alarms", no_alarms: "No alarms", ack: "Ack", acked_by: "acked by {who}", open_n: "{n} open",
    sev_critical: "CRIT", sev_warning: "WARN", sev_info: "INFO",
    request_snapshot: "Snapshot now", snapshot_requested: "Snapshot requested", last_seen: "Last seen", village: "Village", group: "Group",
    status: "Status", health: "Image", device: "Device", kind: "Kind", reason: "Reason", ago_s: "{n}s ago", ago_m: "{n}m ago", ago_h: "{n}h ago", ago_d: "{n}d ago",
    login_title: "Log in to VillageHub", login_help: "Enter your API token (an admin makes one with villagehub token create).",
    login_bad: "Invalid token", login_needed: "Log in to view",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin",
    tab_schedule: "Schedule", tab_list: "Broadcasts",
    bc_title: "Title", bc_text: "Text to speak (TTS)", bc_targets: "Targets (or click villages on the map)", all_township: "Whole township",
    bc_start: "Start (empty = now)", bc_recurrence: "Repeat", bc_priority: "Priority", bc_volume: "Volume", bc_repeat: "Plays",
    bc_submit: "Schedule", bc_emergency: "Emergency", bc_created: "Broadcast {id} created", bc_created_at: "Broadcast {id} created, first plays {at}", bc_no_targets: "Choose targets",
    bc_cancel: "Cancel", bc_cancelled: "Cancelled {id}", bc_empty: "No broadcasts",
    rec_once: "Once", rec_daily: "Daily", rec_weekdays: "Weekdays", rec_weekly: "Weekly", rec_daily7: "Daily, 7 times", rec_hourly3: "Hourly, 3 times",
    prio_n: "priority {n}", prio_emergency: "priority {n} (emergency)",
    confirm_emergency_title: "Confirm emergency broadcast", confirm_emergency_help: "An emergency broadcast interrupts everything of lower priority and ignores quiet hours.",
    confirm_text: "“{title}” will play now at priority {p} in {targets}.", cancel: "Cancel", confirm_go: "Broadcast now",
    link_lost: "⚠ Live link to the hub lost, reconnecting… (retry in {n} s)", link_connecting: "Connecting to the hub…",
    vendor_missing: "Chart library not installed: the admin must run npm ci in dashboards/",
    error: "Error: {msg}", forbidden: "Not allowed for your role",
    state_pending: "pending", state_sent: "sent", state_received: "received", state_playing: "playing", state_done: "done", state_failed: "failed",
    state_rejected: "rejected", state_preempted: "preempted", state_expired: "expired", state_offline: "offline", state_scheduled: "scheduled", state_cancelled: "cancelled",
    state_active: "active", state_completed: "completed", state_finished: "finished", state_fired: "fired", state_missed: "missed",
    ledger: "Problem ledger", ledger_open_n: "{n} open", overdue_n: "{n} overdue", overdue: "overdue", only_overdue: "Overdue only",
    kpi_lights: "Street lights online", kpi_problems: "Open problems", lights_sub: "{on} lit · {fault} faulty", problems_sub: "{n} overdue",
    pb_state_open: "open", pb_state_assigned: "assigned", pb_state_fixed: "fixed", pb_state_verified: "verified", pb_state_closed: "closed", pb_state_rejected: "rejected",
    pb_cat_environment: "Environment", pb_cat_device_fault: "Device fault", pb_cat_safety: "Safety", pb_cat_sanitation: "Sanitation", pb_cat_other: "Other",
    pb_all_states: "All states", pb_all_villages: "All villages", pb_export_csv: "Export CSV", pb_export_xlsx: "Export Excel", pb_empty: "No problems",
    pb_id: "No.", pb_title: "Problem", pb_category: "Category", pb_owner: "Owner", pb_deadline: "Deadline", pb_state: "State", pb_created: "Filed",
    pb_description: "Description", pb_created_by: "Filed by", pb_before: "Before", pb_after: "After", pb_no_photo: "No photo", pb_history: "History",
    pb_back: "Back to list", pb_note: "Note", pb_to_assigned: "Assign", pb_to_fixed: "Mark fixed", pb_to_verified: "Verify", pb_to_closed: "Close",
    pb_rework: "Rework", pb_to_rejected: "Reject", pb_after_photo: "Take after-photo", pb_after_pending: "Snapshot requested; attached when it arrives", pb_after_added: "After-photo attached",
    pb_from_alarm: "To problem", pb_from_camera: "Turn into a problem", pb_filed: "Filed {id}", pb_create_title: "New problem", pb_create: "File",
    pb_with_before: "Attach this camera's latest snapshot as the before-photo", pb_created_ok: "Filed {id}", pb_moved: "{id} → {state}", pb_need_owner: "Assigning needs an owner and a deadline",
    pb_history_row: "{from} → {to}", pb_created_row: "filed", pb_source_camera: "camera", pb_source_upload: "upload",
    ranking: "Village ranking", red_list: "Top", black_list: "Bottom", print_ranking: "Print", rk_score: "Score", rk_rank: "Rank", rk_village: "Village",
    rk_trend: "Trend", rk_trend_up: "↑", rk_trend_down: "↓", rk_trend_same: "—", rk_trend_new: "new", rk_prev: "was #{n}", rk_no_data: "No ranking yet",
    rk_availability: "Device availability", rk_alarm_ack: "Alarms acked in time", rk_problems_on_time: "Problems closed on time", rk_broadcast_delivery: "Broadcast delivery", rk_weight: "weight",
    rk_title: "{township} {period} village ranking", rk_posting: "Public notice", rk_posted_by: "{township} government", rk_method: "Score = Σ component score × weight ({weights}); a component with no data counts as 100. Data collected by VillageHub, computed {at}.",
    rk_period: "Period", rk_print: "Print", rk_login: "Log in on the wall screen first, then open this page.", rk_hint: "Click a village for its breakdown",
    lights: "Lights", lights_panel: "Street lights", lamp_layer: "Lamps", lamp_on: "lit", lamp_off: "off", lamp_fault: "fault", lamp_offline: "offline",
    lt_summary: "online {online}/{total} · lit {on} · faults {fault}", lt_sun: "Sunset {set} · sunrise {rise}", lt_target: "Target", lt_all: "All street lights",
    lt_all_lamps: "All lamps of the village", lt_level: "Level", lt_cmd_on: "On", lt_cmd_off: "Off", lt_cmd_dim: "Dim", lt_sent: "Sent to {n} lamps",
    lt_progress: "Progress", lt_no_cmd: "No command yet", lt_done_n: "done {done}/{total}", lt_villages: "Villages", lt_lamps: "Lamps",
    lt_battery: "Battery", lt_power: "Power", lt_solar: "solar", lt_mains: "mains", lt_action_on: "on", lt_action_off: "off", lt_action_dim: "dim", lt_action_set_schedule: "schedule",
  },
};

let lang = "zh";
const listeners = [];

export function initLang() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const stored = localStorage.getItem("vh.lang");
  lang = fromUrl === "en" || fromUrl === "zh" ? fromUrl : stored === "en" ? "en" : "zh";
  applyStatic();
}

export function getLang() { return lang; }

export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  localStorage.setItem("vh.lang", lang);
  applyStatic();
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) { listeners.push(fn); }

export function t(key, vars) {
  let s = DICT[lang][key] ?? DICT.zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

function applyStatic() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const btn = document.getElementById("btn-lang");
  if (btn) btn.textContent = t("lang_toggle");
}

/** "3分钟前" / "3m ago" for an age in seconds. */
export function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("ago_s", { n: s });
  if (s < 3600) return t("ago_m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago_h", { n: Math.floor(s / 3600) });
  return t("ago_d", { n: Math.floor(s / 86400) });
}
