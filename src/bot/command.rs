//! Reading a chat message as a command. The first word is the command — Chinese or English alias,
//! any case, with an optional leading `/` — and `@name` right after it names the customer. A
//! message that is only a number answers the bot's last question (or picks from its last list).

use serde::{Deserialize, Serialize};

pub use crate::texts::Lang;

/// Which command; also the key of its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verb {
    Help,
    Find,
    Use,
    Info,
    Note,
    Remind,
    Todo,
    Done,
    Snooze,
    Cancel,
    Stage,
    Status,
    Rate,
    Tag,
    Undo,
    Summary,
    TeamTodo,
    Idle,
    Deal,
    Win,
    Lose,
    Forecast,
    Pool,
    Claim,
    Release,
    Score,
}

/// Every verb with its English and Chinese aliases (the first of each is the one shown).
pub const VERBS: [(Verb, &[&str], &[&str]); 26] = [
    (Verb::Help, &["help", "?"], &["帮助", "？"]),
    (Verb::Find, &["find", "search"], &["查", "查找", "搜索"]),
    (Verb::Use, &["use", "select"], &["选", "切换", "选择"]),
    (Verb::Info, &["info", "card"], &["客户", "详情"]),
    (
        Verb::Note,
        &["note", "log"],
        &["记", "记录", "跟进", "记一下", "帮我记", "帮我记一下", "记下"],
    ),
    (
        Verb::Remind,
        &["remind", "reminder"],
        &["提醒", "提醒我", "帮我提醒", "提醒一下", "记得提醒我"],
    ),
    (Verb::Todo, &["todo", "todos"], &["待办"]),
    (Verb::Done, &["done", "finish"], &["完成"]),
    (Verb::Snooze, &["snooze", "postpone"], &["推迟", "延后"]),
    (Verb::Cancel, &["cancel"], &["取消"]),
    (Verb::Stage, &["stage"], &["阶段"]),
    (Verb::Status, &["status"], &["状态"]),
    (Verb::Rate, &["rate", "rating"], &["评级"]),
    (Verb::Tag, &["tag"], &["标签"]),
    (Verb::Undo, &["undo"], &["撤销"]),
    (Verb::Summary, &["summary", "report"], &["日报", "汇总"]),
    (Verb::TeamTodo, &["teamtodo", "team-todo"], &["团队待办"]),
    (Verb::Idle, &["idle", "who-is-idle"], &["谁没跟进", "谁没有跟进"]),
    (Verb::Deal, &["deal", "deals", "opportunity"], &["商机", "机会"]),
    (Verb::Win, &["win", "won"], &["赢单", "成交"]),
    (Verb::Lose, &["lose", "lost"], &["输单", "丢单"]),
    (Verb::Forecast, &["forecast", "pipeline"], &["预测", "业绩预测"]),
    (Verb::Pool, &["pool"], &["公海", "公海池", "线索池"]),
    (Verb::Claim, &["claim"], &["领取", "认领"]),
    (Verb::Release, &["release", "giveback"], &["退回", "退回公海", "放弃"]),
    (Verb::Score, &["score"], &["评分", "打分"]),
];

/// Commands of several English words, read as one (`team todo` is `teamtodo`).
const PHRASES: [(&str, &str); 2] = [("team todo", "teamtodo"), ("who is idle", "idle")];

impl Verb {
    /// The alias shown in answers and help, in `lang`.
    pub fn name(self, lang: Lang) -> &'static str {
        let (_, en, zh) = VERBS.iter().find(|(v, _, _)| *v == self).expect("every verb is listed");
        if lang.en() { en[0] } else { zh[0] }
    }

    fn lookup(word: &str) -> Option<(Self, Lang)> {
        // `note:` / `记：` — a colon after the command word, as people write it.
        let word = word.trim_end_matches([':', '：']);
        let lower = word.to_lowercase();
        VERBS.iter().find_map(|(verb, en, zh)| {
            if en.contains(&lower.as_str()) {
                Some((*verb, Lang::En))
            } else if zh.contains(&word) {
                Some((*verb, Lang::Zh))
            } else {
                None
            }
        })
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A command: `target` is the text after `@` (a name, remark, pinyin or list number), `args`
    /// the rest.
    Command {
        verb: Verb,
        target: Option<String>,
        args: String,
    },
    /// Only a number: an answer to a question, or a pick from the last list.
    Number(usize),
    /// Anything else.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub message: Message,
    pub lang: Lang,
}

pub fn parse(text: &str) -> Parsed {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<usize>() {
        return Parsed {
            message: Message::Number(n),
            lang: Lang::Zh,
        };
    }
    let body = trimmed
        .strip_prefix('/')
        .or_else(|| trimmed.strip_prefix('／'))
        .unwrap_or(trimmed)
        .trim_start();
    let lower = body.to_lowercase();
    let phrase = PHRASES
        .iter()
        .find(|(p, _)| lower.starts_with(p) && body[p.len()..].chars().next().is_none_or(char::is_whitespace));
    let (word, rest) = match phrase {
        Some((p, word)) => (*word, body[p.len()..].trim_start()),
        None => split_word(body),
    };
    // A Chinese alias may be written together with what follows: "完成2", "记@张伟 已报价".
    let found = match Verb::lookup(word) {
        Some((verb, lang)) => Some((verb, lang, rest)),
        None => glued_verb(body),
    };
    let Some((verb, lang, rest)) = found else {
        return Parsed {
            message: Message::Text(trimmed.to_owned()),
            lang: Lang::of_text(trimmed),
        };
    };
    let (target, args) = match rest.strip_prefix('@').or_else(|| rest.strip_prefix('＠')) {
        Some(after) => {
            let (name, args) = split_word(after);
            (Some(name.to_owned()).filter(|n| !n.is_empty()), args)
        }
        None => (None, rest),
    };
    Parsed {
        message: Message::Command {
            verb,
            target,
            args: args.trim().to_owned(),
        },
        lang,
    }
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// A Chinese alias written together with what follows: directly followed by `@`, a digit or a
/// colon, or one of the spoken forms (`提醒我明天…`, `帮我记张总说…`) followed by anything. The
/// longest alias wins (`提醒我10分钟后` is 提醒我, not 提醒 + 我10分钟后).
fn glued_verb(text: &str) -> Option<(Verb, Lang, &str)> {
    let mut found: Option<(Verb, &str, &str)> = None;
    for (verb, _, zh) in VERBS {
        for alias in zh {
            let Some(rest) = text.strip_prefix(alias) else { continue };
            let spoken = alias.chars().count() >= 3 || alias.ends_with('我');
            let glued = rest.starts_with(|c: char| matches!(c, '@' | '＠' | ':' | '：') || c.is_ascii_digit());
            if (spoken || glued) && found.is_none_or(|(_, longest, _)| alias.len() > longest.len()) {
                found = Some((verb, alias, rest));
            }
        }
    }
    found.map(|(verb, _, rest)| (verb, Lang::Zh, rest.trim_start_matches([':', '：']).trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> (Verb, Option<String>, String, Lang) {
        match parse(text) {
            Parsed {
                message: Message::Command { verb, target, args },
                lang,
            } => (verb, target, args, lang),
            other => panic!("{text:?} is not a command: {other:?}"),
        }
    }

    #[test]
    fn verbs_in_both_languages_with_or_without_a_slash() {
        assert_eq!(
            command("记 已报价，等回复"),
            (Verb::Note, None, "已报价，等回复".into(), Lang::Zh)
        );
        assert_eq!(command("/NOTE quoted"), (Verb::Note, None, "quoted".into(), Lang::En));
        assert_eq!(
            command("跟进 @张伟 明天拜访"),
            (Verb::Note, Some("张伟".into()), "明天拜访".into(), Lang::Zh)
        );
        assert_eq!(
            command("remind @zw in 2h call"),
            (Verb::Remind, Some("zw".into()), "in 2h call".into(), Lang::En)
        );
        assert_eq!(
            command("完成 2 已回电"),
            (Verb::Done, None, "2 已回电".into(), Lang::Zh)
        );
        assert_eq!(command("完成2"), (Verb::Done, None, "2".into(), Lang::Zh));
        assert_eq!(
            command("记@张伟 已报价"),
            (Verb::Note, Some("张伟".into()), "已报价".into(), Lang::Zh)
        );
        assert_eq!(command("?").0, Verb::Help);
        assert_eq!(command("帮助 提醒"), (Verb::Help, None, "提醒".into(), Lang::Zh));
        assert_eq!(command("Todo").0, Verb::Todo);
        assert_eq!(
            command("tag @3 -重点"),
            (Verb::Tag, Some("3".into()), "-重点".into(), Lang::En)
        );
    }

    #[test]
    fn the_way_reps_actually_ask() {
        assert_eq!(
            command("提醒我 10分钟后 给孙丽回电话"),
            (Verb::Remind, None, "10分钟后 给孙丽回电话".into(), Lang::Zh)
        );
        assert_eq!(
            command("提醒我10分钟后给孙丽回电话"),
            (Verb::Remind, None, "10分钟后给孙丽回电话".into(), Lang::Zh)
        );
        assert_eq!(
            command("提醒我明天下午3点回电话"),
            (Verb::Remind, None, "明天下午3点回电话".into(), Lang::Zh)
        );
        assert_eq!(
            command("帮我记 张总说下周签"),
            (Verb::Note, None, "张总说下周签".into(), Lang::Zh)
        );
        assert_eq!(
            command("记一下：张总说下周签"),
            (Verb::Note, None, "张总说下周签".into(), Lang::Zh)
        );
        assert_eq!(
            command("note: quoted 50k"),
            (Verb::Note, None, "quoted 50k".into(), Lang::En)
        );
        assert_eq!(
            command("remind me in 1 minute to test push"),
            (Verb::Remind, None, "me in 1 minute to test push".into(), Lang::En)
        );
        // A word that merely starts like a command is still text.
        assert_eq!(
            parse("记得给张总回电话").message,
            Message::Text("记得给张总回电话".into())
        );
        assert_eq!(
            parse("提醒事项都做完了").message,
            Message::Text("提醒事项都做完了".into())
        );
    }

    #[test]
    fn numbers_and_plain_text() {
        assert_eq!(parse(" 2 ").message, Message::Number(2));
        assert_eq!(
            parse("记得给张总回电话").message,
            Message::Text("记得给张总回电话".into())
        );
        assert_eq!(parse("hello there").lang, Lang::En);
        assert_eq!(parse("你好").lang, Lang::Zh);
    }
}
