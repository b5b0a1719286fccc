namespace Escrow.Tests.Security;

/// <summary>
/// What a read of an escrow gives away: the client secret (which confirms a payment on the sender's PaymentIntent) only
/// in the create's answer and to the sender while the payment is still to be made; an operator's free text never to
/// the sender.
/// </summary>
public sealed class SenderViewSecurityTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<(JsonElement Body, string Raw)> ReadAsync(HttpClient client, Guid id)
    {
        var response = await client.GetAsync($"/v1/escrows/{id}");
        var raw = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, raw);
        using var document = JsonDocument.Parse(raw);
        return (document.RootElement.Clone(), raw);
    }

    private static bool HasClientSecret(JsonElement view) => view.TryGetProperty("clientSecret", out var s) && s.ValueKind == JsonValueKind.String;

    [Fact]
    public async Task The_client_secret_is_read_only_by_the_sender_and_only_while_the_payment_is_to_be_made()
    {
        var recipient = await App.NewRecipientAsync();
        var created = await App.CreateAwaitingPaymentEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var sender = App.WithBearer(created.GetProperty("accessToken").GetString()!);

        Assert.True(HasClientSecret(created));
        Assert.True(HasClientSecret((await ReadAsync(sender, id)).Body));
        Assert.False(HasClientSecret((await ReadAsync(App.Platform(), id)).Body));
        Assert.False(HasClientSecret((await ReadAsync(App.Admin(), id)).Body));

        await App.ConfirmInSandboxAsync(created.GetProperty("paymentIntentId").GetString()!);
        await App.WaitForStatusAsync(id, "held");
        Assert.False(HasClientSecret((await ReadAsync(sender, id)).Body));
    }

    [Fact]
    public async Task An_operators_reason_is_not_shown_to_the_sender()
    {
        const string Note = "internal: the recipient's manager asked us to refund quietly";
        var recipient = await App.NewRecipientAsync();
        var created = await App.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = Note })).StatusCode);

        var (view, raw) = await ReadAsync(App.WithBearer(created.GetProperty("accessToken").GetString()!), id);
        Assert.Contains(view.GetProperty("history").EnumerateArray(), h => h.GetProperty("event").GetString() == "operator_refund");
        Assert.DoesNotContain(Note, raw, StringComparison.Ordinal);
        Assert.Contains(Note, (await ReadAsync(App.Platform(), id)).Raw, StringComparison.Ordinal);
    }
}
