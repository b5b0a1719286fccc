namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Postmark's bounce webhook: a bounce lands in the e-mail log beside the e-mail it is about.</summary>
public sealed class EmailBounceTests
{
    [Fact]
    public async Task A_bounced_new_message_of_a_held_escrow_is_logged_by_its_message_id_and_raises_recipient_unreachable_once()
    {
        await using var app = new EscrowApiFactory();
        var (_, id) = await app.HeldEscrowOfNewRecipientAsync();
        var sent = await SentAsync(app, id, "new-message");

        var first = await PostBounceAsync(app, Bounce(7001, sent.ProviderMessageId, "alice@example.com"));
        var again = await PostBounceAsync(app, Bounce(7001, sent.ProviderMessageId, "alice@example.com"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("recipient_unreachable", (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outcome").GetString());
        Assert.True((await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());
        var bounced = Assert.Single(await Store(app).GetEmailLogAsync(id), e => e.Outcome == "bounced");
        Assert.Equal("new-message", bounced.Kind);
        Assert.Equal(sent.ProviderMessageId, bounced.ProviderMessageId);
        Assert.Contains("HardBounce", bounced.Error, StringComparison.Ordinal);
        var alert = Assert.Single(await app.OpenAlertsAsync("recipient_unreachable"));
        Assert.Equal(id, alert.GetProperty("escrowId").GetGuid());
    }

    [Fact]
    public async Task A_bounce_with_an_unknown_message_id_is_matched_by_address_and_one_to_nobody_known_is_recorded_unmatched()
    {
        await using var app = new EscrowApiFactory();
        var recipient = await app.PayableRecipientAsync();
        var id = (await app.CreateHeldEscrowAsync(recipient)).Id();
        await SentAsync(app, id, "payment-receipt");

        // The sender's receipt bounced: found by the address; not the recipient's question, so no alert.
        var byAddress = await PostBounceAsync(app, Bounce(7002, Guid.NewGuid().ToString(), "BOB@example.com"));
        var unknown = await PostBounceAsync(app, Bounce(7003, Guid.NewGuid().ToString(), "nobody@example.com"));

        Assert.Equal("recorded", (await byAddress.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outcome").GetString());
        Assert.Equal("unmatched", (await unknown.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outcome").GetString());
        Assert.Equal("payment-receipt", Assert.Single(await Store(app).GetEmailLogAsync(id), e => e.Outcome == "bounced").Kind);
        Assert.Empty(await app.OpenAlertsAsync("recipient_unreachable"));
    }

    [Fact]
    public async Task A_bounce_without_credentials_or_an_id_or_with_a_nul_in_a_field_never_answers_5xx_and_an_unauthorised_one_records_nothing()
    {
        await using var app = new EscrowApiFactory();
        var (_, id) = await app.HeldEscrowOfNewRecipientAsync();
        var sent = await SentAsync(app, id, "new-message");

        var wrong = await PostBounceAsync(app, Bounce(7004, sent.ProviderMessageId, "alice@example.com"), password: "wrong-password");
        var noId = await PostBounceAsync(app, new { MessageID = sent.ProviderMessageId, Email = "alice@example.com" });
        var nul = await PostBounceAsync(app, Bounce(7005, "no-such-message", "nobody\u0000@example.com", description: "bad\u0000text"));

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, noId.StatusCode);
        Assert.Equal(HttpStatusCode.OK, nul.StatusCode);
        Assert.DoesNotContain(await Store(app).GetEmailLogAsync(id), e => e.Outcome == "bounced");
        Assert.Empty(await app.OpenAlertsAsync("recipient_unreachable"));
    }

    private static IEscrowStore Store(EscrowApiFactory app) => app.Services.GetRequiredService<IEscrowStore>();

    private static async Task<EmailLogEntry> SentAsync(EscrowApiFactory app, Guid id, string kind) =>
        (await Eventually.UntilAsync(
            async () => (await Store(app).GetEmailLogAsync(id)).FirstOrDefault(e => e.Kind == kind && e.Outcome == "sent"),
            e => e is not null, $"the {kind} e-mail logged as sent"))!;

    private static object Bounce(long bounceId, string? messageId, string email, string description = "The server was unable to deliver your message.") => new
    {
        RecordType = "Bounce",
        ID = bounceId,
        Type = "HardBounce",
        TypeCode = 1,
        MessageID = messageId,
        Email = email,
        Description = description,
        Details = "smtp;550 5.1.1 unknown user",
        BouncedAt = "2026-12-04T10:00:00Z",
        Inactive = true,
    };

    private static Task<HttpResponseMessage> PostBounceAsync(EscrowApiFactory app, object body, string password = EscrowApiFactory.InboundPassword)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/bounce") { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{EscrowApiFactory.InboundUser}:{password}")));
        return app.Anonymous().SendAsync(request);
    }
}
