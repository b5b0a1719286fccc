namespace Escrow.Tests.Api.Contract;

/// <summary>Postmark's inbound webhook: only a human reply from the recipient releases, once.</summary>
public sealed class PostmarkInboundContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<(string Recipient, Guid Id, string Token)> HeldAsync(bool payouts = false)
    {
        var recipient = await App.NewRecipientAsync(payouts: payouts);
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        return (recipient, id, await App.ReplyTokenOfAsync(id));
    }

    private static async Task<string> OutcomeOf(HttpResponseMessage response)
    {
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await Contract.JsonOf(response)).GetProperty("outcome").GetString()!;
    }

    private static Dictionary<string, object?> Reply(string token, string from, string? messageId = null, string text = "Here is my answer.")
    {
        var json = JsonSerializer.Serialize(EscrowApiFactory.InboundReply(token, from, messageId, text));
        return JsonSerializer.Deserialize<Dictionary<string, object?>>(json)!;
    }

    [Fact]
    public async Task Inbound_mail_without_credentials_answers_401_with_a_basic_challenge_and_records_nothing()
    {
        var (recipient, id, token) = await HeldAsync();
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/inbound") { Content = new StringContent(JsonSerializer.Serialize(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient))), Encoding.UTF8, "application/json") };
        var response = await App.Anonymous().SendAsync(request);
        await Contract.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Basic");
        Assert.Empty(await App.Store().GetInboundMessagesAsync(id));
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Theory]
    [InlineData(EscrowApiFactory.InboundUser, "wrong-password")]
    [InlineData("someone-else", EscrowApiFactory.InboundPassword)]
    [InlineData("", "")]
    public async Task Inbound_mail_with_wrong_credentials_answers_401_with_a_basic_challenge_and_records_nothing(string user, string password)
    {
        var (recipient, id, token) = await HeldAsync();
        var response = await App.PostInboundAsync(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient)), user, password);
        await Contract.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Basic");
        Assert.Empty(await App.Store().GetInboundMessagesAsync(id));
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task Inbound_mail_with_an_unknown_token_answers_200_ignored_unmatched()
    {
        var token = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        Assert.Equal("ignored:unmatched", await OutcomeOf(await App.PostInboundAsync(EscrowApiFactory.InboundReply(token))));
    }

    [Fact]
    public async Task Inbound_mail_without_any_token_answers_200_ignored_unmatched()
    {
        var mail = Reply("x", "alice@example.com");
        mail["MailboxHash"] = "";
        mail["To"] = "support@reply.test";
        Assert.Equal("ignored:unmatched", await OutcomeOf(await App.PostInboundAsync(mail)));
    }

    [Theory]
    [InlineData("Auto-Submitted", "auto-replied", null)]
    [InlineData("X-Autoreply", "yes", null)]
    [InlineData("Precedence", "bulk", null)]
    [InlineData(null, null, "Out of office")]
    [InlineData(null, null, "Automatic reply: A question")]
    public async Task An_automatic_reply_answers_200_and_leaves_the_escrow_held(string? header, string? value, string? subject)
    {
        var (recipient, id, token) = await HeldAsync();
        var mail = Reply(token, Contract.EmailOf(recipient));
        if (header is not null)
        {
            mail["Headers"] = new[] { new { Name = header, Value = value } };
        }
        if (subject is not null)
        {
            mail["Subject"] = subject;
            mail["StrippedTextReply"] = "";
            mail["TextBody"] = "I am away until Monday.";
        }
        Assert.Equal("ignored:auto_reply", await OutcomeOf(await App.PostInboundAsync(mail)));
        Assert.Equal("held", await App.StatusOf(id));
        var recorded = Assert.Single(await App.Store().GetInboundMessagesAsync(id));
        Assert.Equal("auto_reply", recorded.IgnoredReason);
    }

    [Fact]
    public async Task A_reply_from_another_address_answers_200_leaves_the_escrow_held_and_raises_reply_from_unknown_sender()
    {
        var (_, id, token) = await HeldAsync();
        Assert.Equal("ignored:unknown_sender", await OutcomeOf(await App.PostInboundAsync(EscrowApiFactory.InboundReply(token, from: "mallory@example.com"))));
        Assert.Equal("held", await App.StatusOf(id));
        Assert.Single(await App.AlertsOfAsync(id, "reply_from_unknown_sender"));
    }

    [Fact]
    public async Task The_same_message_id_twice_is_a_duplicate_and_releases_once()
    {
        var (recipient, id, token) = await HeldAsync(payouts: true);
        var messageId = Guid.NewGuid().ToString();
        var mail = EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient), messageId);

        Assert.Equal("accepted", await OutcomeOf(await App.PostInboundAsync(mail)));
        var second = await App.PostInboundAsync(mail);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.True((await Contract.JsonOf(second)).GetProperty("duplicate").GetBoolean());

        await App.WaitForStatusAsync(id, "released");
        Assert.Single(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
        Assert.Single(await App.Store().GetInboundMessagesAsync(id));
    }

    [Theory]
    [InlineData("To")]
    [InlineData("Cc")]
    public async Task A_reply_without_mailbox_hash_is_matched_by_the_reply_address_in_to_or_cc(string field)
    {
        var (recipient, id, token) = await HeldAsync();
        var mail = Reply(token, Contract.EmailOf(recipient));
        mail["MailboxHash"] = null;
        mail["To"] = "someone@example.com";
        mail[field] = $"Alice <someone@example.com>, \"Escrow\" <reply+{token}@reply.test>";
        Assert.Equal("accepted", await OutcomeOf(await App.PostInboundAsync(mail)));
        Assert.NotEqual("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task Inbound_mail_that_is_not_json_answers_400()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/inbound") { Content = new StringContent("{not json", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{EscrowApiFactory.InboundUser}:{EscrowApiFactory.InboundPassword}")));
        await Contract.AssertProblemAsync(await App.Anonymous().SendAsync(request), HttpStatusCode.BadRequest);
    }
}

/// <summary>Inbound mail over Postmark:InboundMaxBytes is refused before it is read.</summary>
public sealed class PostmarkInboundLimitContractTests(SmallInboundLimitFixture fixture) : IClassFixture<SmallInboundLimitFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Fact]
    public async Task Inbound_mail_over_the_configured_limit_answers_413_and_is_not_recorded()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        var mail = EscrowApiFactory.InboundReply(await App.ReplyTokenOfAsync(id), Contract.EmailOf(recipient), text: new string('a', SmallInboundLimitFixture.InboundMaxBytes * 2));

        await Contract.AssertProblemAsync(await App.PostInboundAsync(mail), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("held", await App.StatusOf(id));
        Assert.Empty(await App.Store().GetInboundMessagesAsync(id));
    }

    [Fact]
    public async Task Inbound_mail_under_the_configured_limit_is_accepted()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        var response = await App.PostInboundAsync(EscrowApiFactory.InboundReply(await App.ReplyTokenOfAsync(id), Contract.EmailOf(recipient)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("accepted", (await Contract.JsonOf(response)).GetProperty("outcome").GetString());
    }
}
