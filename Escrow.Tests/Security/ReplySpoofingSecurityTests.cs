namespace Escrow.Tests.Security;

/// <summary>The rule on the receiving server's verdicts: only the topmost header of each kind counts.</summary>
public sealed class ReplyAuthenticationRuleTests
{
    private const string From = "alice@example.com";

    private static string? Refusal(params (string Name, string Value)[] headers) => ReplyAuthentication.Refusal(headers, From);

    [Fact]
    public void A_reply_whose_dmarc_failed_is_refused() =>
        Assert.NotNull(Refusal(("Authentication-Results", "mx.inbound.test; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=fail (p=REJECT) header.from=example.com")));

    [Fact]
    public void A_reply_whose_spf_failed_without_a_dkim_pass_for_its_domain_is_refused()
    {
        Assert.NotNull(Refusal(("Authentication-Results", "mx.inbound.test; spf=fail smtp.mailfrom=example.com; dkim=none")));
        Assert.NotNull(Refusal(("Authentication-Results", "mx.inbound.test; spf=softfail smtp.mailfrom=example.com; dkim=pass header.d=attacker.test")));
        Assert.NotNull(Refusal(("Received-SPF", "Fail (mailfrom) identity=mailfrom; client-ip=203.0.113.9; envelope-from=alice@example.com")));
    }

    [Fact]
    public void A_verdict_forged_below_the_receiving_servers_changes_nothing() =>
        Assert.NotNull(Refusal(
            ("Authentication-Results", "mx.inbound.test; spf=fail smtp.mailfrom=example.com; dkim=none; dmarc=none"),
            ("Authentication-Results", "mx.inbound.test; spf=pass; dkim=pass header.d=example.com; dmarc=pass"),
            ("Received-SPF", "Pass (forged)")));

    [Fact]
    public void An_authenticated_reply_is_not_refused()
    {
        Assert.Null(Refusal(("Authentication-Results", "mx.inbound.test; spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com")));
        Assert.Null(Refusal(("Authentication-Results", "mx.inbound.test; spf=fail smtp.mailfrom=example.com; dkim=pass (2048-bit key) header.i=@mail.example.com header.d=example.com")));
        Assert.Null(Refusal(("Received-SPF", "Pass (sender SPF authorized) identity=mailfrom; client-ip=192.0.2.1")));
    }
}

/// <summary>An API that requires authenticated replies (the live-mode default).</summary>
public sealed class AuthenticatedRepliesFixture : InMemoryApiFixture
{
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Postmark:RequireAuthenticatedReplies"] = "true" };
}

/// <summary>
/// Reply spoofing: anyone can send mail with the recipient's From address to an escrow's reply address (if they learn
/// the token). With authenticated replies required, a reply the receiving server did not authenticate releases nothing.
/// </summary>
public sealed class ReplySpoofingSecurityTests(AuthenticatedRepliesFixture fixture) : IClassFixture<AuthenticatedRepliesFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private static object Reply(string token, string from, params (string Name, string Value)[] headers)
    {
        var json = JsonSerializer.SerializeToNode(EscrowApiFactory.InboundReply(token, from))!.AsObject();
        json["Headers"] = new System.Text.Json.Nodes.JsonArray([.. headers.Select(h => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["Name"] = h.Name, ["Value"] = h.Value })]);
        return json;
    }

    /// <summary>A held escrow of a new recipient who can be paid, its reply token and the recipient's address.</summary>
    private async Task<(Guid Id, string Token, string From)> HeldEscrowAsync()
    {
        var recipient = await App.NewRecipientAsync(payouts: true);
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        return (id, await App.ReplyTokenOfAsync(id), Contract.EmailOf(recipient));
    }

    [Fact]
    public async Task A_spoofed_reply_from_the_recipients_address_releases_nothing_and_raises_an_alert()
    {
        var (id, token, from) = await HeldEscrowAsync();
        var domain = from[(from.IndexOf('@') + 1)..];

        var spoofed = await App.PostInboundAsync(Reply(token, from,
            ("Received-SPF", $"Fail (domain of {from} does not designate 203.0.113.9 as permitted sender) identity=mailfrom; client-ip=203.0.113.9"),
            ("Authentication-Results", $"mx.inbound.test; spf=fail smtp.mailfrom={domain}; dkim=none; dmarc=fail (p=REJECT) header.from={domain}")));

        Assert.Equal(HttpStatusCode.OK, spoofed.StatusCode);
        Assert.Equal("ignored:sender_not_authenticated", (await Contract.JsonOf(spoofed)).GetProperty("outcome").GetString());
        Assert.Equal("held", await App.StatusOf(id));
        Assert.DoesNotContain(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
        Assert.Contains(await App.Store().GetInboundMessagesAsync(id), m => m.IgnoredReason == "sender_not_authenticated");
        Assert.Contains(await App.Store().ListAlertsAsync(openOnly: true, limit: 1_000), a => a.Kind == "reply_not_authenticated" && a.EscrowId == id);
    }

    [Fact]
    public async Task The_recipients_authenticated_reply_still_releases()
    {
        var (id, token, from) = await HeldEscrowAsync();
        var domain = from[(from.IndexOf('@') + 1)..];

        var reply = await App.PostInboundAsync(Reply(token, from,
            ("Received-SPF", "Pass (sender SPF authorized) identity=mailfrom; client-ip=192.0.2.1"),
            ("Authentication-Results", $"mx.inbound.test; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}")));

        Assert.Equal("accepted", (await Contract.JsonOf(reply)).GetProperty("outcome").GetString());
        await App.WaitForStatusAsync(id, "released");
    }

    private async Task<JsonElement> SimulateInboundAsync(string from, string token, bool spoofed)
    {
        var response = await App.Anonymous().PostAsync("/_sandbox/postmark/inbound", System.Net.Http.Json.JsonContent.Create(new
        {
            from, to = $"reply+{token}@reply.test", subject = "Re: A question", text = "Here is my answer.", spoofed,
        }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var delivered = await Contract.JsonOf(response);
        Assert.Equal(200, delivered.GetProperty("status").GetInt32());
        using var answer = JsonDocument.Parse(delivered.GetProperty("response").GetString()!);
        return answer.RootElement.Clone();
    }

    [Fact]
    public async Task A_reply_the_postmark_sandbox_delivers_as_spoofed_releases_nothing_and_the_genuine_one_releases()
    {
        var (id, token, from) = await HeldEscrowAsync();

        var spoofed = await SimulateInboundAsync(from, token, spoofed: true);
        Assert.Equal("ignored:sender_not_authenticated", spoofed.GetProperty("outcome").GetString());
        Assert.Equal("held", await App.StatusOf(id));

        var genuine = await SimulateInboundAsync(from, token, spoofed: false);
        Assert.Equal("accepted", genuine.GetProperty("outcome").GetString());
        await App.WaitForStatusAsync(id, "released");
    }
}
