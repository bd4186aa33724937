//! WeCom's web protocol without I/O: the sign-in (OAuth2) address and the JS-SDK signature.

/// The page URL WeCom signs: everything before the first `#`, taken as is (no decoding or
/// encoding — the client signs exactly what `location.href.split('#')[0]` gives).
pub fn signed_url(url: &str) -> &str {
    url.split('#').next().unwrap_or_default()
}

/// `sha1("jsapi_ticket=T&noncestr=N&timestamp=TS&url=URL")` in lower-case hex: raw values, in that
/// order. The same for the corp signature (corp ticket) and the agent signature (app ticket).
pub fn signature(ticket: &str, nonce: &str, timestamp: i64, url: &str) -> String {
    let text = format!(
        "jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={}",
        signed_url(url)
    );
    super::crypto::sha1_hex(text)
}

/// Where a page sends a browser to sign in silently (`snsapi_base`): WeCom answers with a redirect
/// to `redirect_uri?code=…&state=…`. `state` must be letters and digits, at most 128 bytes.
pub fn authorize_url(oauth_base: &str, corp_id: &str, redirect_uri: &str, state: &str, agent_id: i64) -> String {
    let encoded: String = form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    format!(
        "{}/connect/oauth2/authorize?appid={corp_id}&redirect_uri={encoded}&response_type=code&scope=snsapi_base&state={state}&agentid={agent_id}#wechat_redirect",
        oauth_base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICKET: &str = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

    #[test]
    fn the_documented_vectors() {
        let nonce = "Wm3WZYTPz0wzccnW";
        assert_eq!(
            signature(TICKET, nonce, 1414587457, "http://mp.weixin.qq.com?params=value"),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
        assert_eq!(
            signature(TICKET, nonce, 1414587457, "http://mp.weixin.qq.com"),
            "f4d90daf4b3bca3078ab155816175ba34c443a7b"
        );
    }

    #[test]
    fn the_fragment_is_not_signed_and_the_url_is_not_encoded() {
        let page = "https://crm.example.com/sidebar/?entry=single_chat_tools&lang=zh#/customer/wmAbC";
        assert_eq!(
            signature(TICKET, "Qx7pLm2Zc9TfWb4R", 1700000000, page),
            "44b13681b6169582a9aff373d778a3cc73485bea"
        );
    }

    #[test]
    fn the_authorize_url_encodes_the_redirect_as_one_component() {
        let url = authorize_url(
            "https://open.weixin.qq.com/",
            "ww1",
            "https://crm.example.com/web/oauth/callback?x=1",
            "abc123",
            1000002,
        );
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww1&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fweb%2Foauth%2Fcallback%3Fx%3D1&response_type=code&scope=snsapi_base&state=abc123&agentid=1000002#wechat_redirect"
        );
    }
}
