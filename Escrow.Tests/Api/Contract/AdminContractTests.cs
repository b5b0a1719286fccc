using Escrow.Api.Hosting;

namespace Escrow.Tests.Api.Contract;

/// <summary>Operators' actions: audited, reasoned, refused in the wrong state.</summary>
public sealed class AdminContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<(Guid Id, string PaymentIntentId)> HeldAsync()
    {
        var recipient = await App.NewRecipientAsync();
        var escrow = await App.CreateHeldEscrowAsync(recipient);
        return (escrow.GetProperty("id").GetGuid(), escrow.GetProperty("paymentIntentId").GetString()!);
    }

    [Theory]
    [InlineData("refund")]
    [InlineData("release")]
    public async Task A_release_or_refund_without_a_reason_answers_400_naming_reason_and_changes_nothing(string action)
    {
        var (id, pi) = await HeldAsync();
        await Contract.AssertValidationProblemAsync(await App.Admin().PostAsync($"/v1/admin/escrows/{id}/{action}", null), "reason");
        await Contract.AssertValidationProblemAsync(await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/{action}", new { reason = "   " }), "reason");
        Assert.Equal("held", await App.StatusOf(id));
        Assert.Equal("requires_capture", App.Stripe.GetPaymentIntent(pi)!.Status);
        Assert.DoesNotContain(await App.Store().GetAuditAsync(id, 50), a => a.Action == $"escrow.{action}");
    }

    [Fact]
    public async Task A_refund_with_a_reason_over_1000_characters_answers_400()
    {
        var (id, _) = await HeldAsync();
        await Contract.AssertValidationProblemAsync(await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = new string('r', 1001) }), "reason");
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task A_refund_of_a_held_escrow_cancels_the_authorisation_and_is_audited_with_the_key_id_and_reason()
    {
        var (id, pi) = await HeldAsync();
        var response = await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "Sender asked, ticket 42" });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());

        await App.WaitForStatusAsync(id, "refunded");
        Assert.Equal("canceled", App.Stripe.GetPaymentIntent(pi)!.Status);
        var audit = Assert.Single(await App.Store().GetAuditAsync(id, 50), a => a.Action == "escrow.refund");
        Assert.Equal("Sender asked, ticket 42", audit.Reason);
        Assert.Equal(ApiKeyRegistry.KeyId(EscrowApiFactory.AdminKey), audit.KeyId);
        Assert.Equal("accepted", audit.Details);
        Assert.DoesNotContain(EscrowApiFactory.AdminKey, JsonSerializer.Serialize(audit), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_release_of_a_refunded_escrow_answers_409_not_allowed_in_status_and_is_audited_as_rejected()
    {
        var (id, pi) = await HeldAsync();
        Assert.Equal(HttpStatusCode.OK, (await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "refund first" })).StatusCode);
        await App.WaitForStatusAsync(id, "refunded");

        var response = await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/release", new { reason = "release after refund" });
        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("not_allowed_in_status", problem.GetProperty("rejection").GetString());
        Assert.Equal(id, problem.GetProperty("escrowId").GetGuid());
        Assert.Equal("refunded", await App.StatusOf(id));
        Assert.Equal("canceled", App.Stripe.GetPaymentIntent(pi)!.Status);
        Assert.DoesNotContain(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
        Assert.Contains(await App.Store().GetAuditAsync(id, 50), a => a.Action == "escrow.release" && a.Details == "rejected:not_allowed_in_status");
    }

    [Fact]
    public async Task A_refund_with_a_non_json_body_answers_415()
    {
        var (id, _) = await HeldAsync();
        var response = await App.Admin().PostAsync($"/v1/admin/escrows/{id}/refund", new StringContent("reason=because"));
        await Contract.AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task The_circuit_breaker_is_closed()
    {
        var response = await App.Admin().GetAsync("/v1/admin/circuit-breaker");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var breaker = await Contract.JsonOf(response);
        Assert.Equal("closed", breaker.GetProperty("state").GetString());
        Assert.Equal(0, breaker.GetProperty("trips").GetInt32());
    }

    [Fact]
    public async Task Acknowledging_an_alert_answers_204_and_marks_it_acknowledged_by_the_key()
    {
        var (alert, _) = await App.Store().RaiseAlertAsync(new NewAlert("contract_test", "warning", null, "contract_test/" + Guid.NewGuid(), "An alert to acknowledge.", App.Clock.GetUtcNow()));
        Assert.Contains(await App.AlertsAsync(open: true), a => a.GetProperty("id").GetInt64() == alert.Id);

        var response = await App.Admin().PostAsync($"/v1/admin/alerts/{alert.Id}/ack", null);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);

        var listed = Assert.Single(await App.AlertsAsync(), a => a.GetProperty("id").GetInt64() == alert.Id);
        Assert.Equal(JsonValueKind.String, listed.GetProperty("acknowledgedAt").ValueKind);
        Assert.Equal(ApiKeyRegistry.KeyId(EscrowApiFactory.AdminKey), listed.GetProperty("acknowledgedBy").GetString());
        Assert.DoesNotContain(await App.AlertsAsync(open: true), a => a.GetProperty("id").GetInt64() == alert.Id);
        Assert.Contains(await App.Store().GetAuditAsync(null, 200), a => a.Action == "alert.ack" && a.Details == $"alert {alert.Id}");
    }

    [Fact]
    public async Task Acknowledging_an_unknown_alert_answers_404_problem()
    {
        await Contract.AssertProblemAsync(await App.Admin().PostAsync($"/v1/admin/alerts/{long.MaxValue}/ack", null), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("/v1/admin/escrows?status=nonsense")]
    [InlineData("/v1/admin/escrows?limit=0")]
    [InlineData("/v1/admin/escrows?limit=201")]
    [InlineData("/v1/admin/escrows?after=not-a-cursor")]
    [InlineData("/v1/admin/alerts?limit=0")]
    public async Task Admin_lists_with_invalid_parameters_answer_400_problem(string path)
    {
        await Contract.AssertProblemAsync(await App.Admin().GetAsync(path), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Admin_escrow_list_filters_by_recipient_and_status()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        // The list reads the projection, which the escrow writes right after it answers the create.
        var items = await Eventually.UntilAsync(async () =>
        {
            var response = await App.Admin().GetAsync($"/v1/admin/escrows?recipientId={recipient}&status=held");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await Contract.JsonOf(response)).GetProperty("items").EnumerateArray().ToList();
        }, items => items.Count > 0, $"escrow {id} in the admin list");
        var item = Assert.Single(items);
        Assert.Equal(id, item.GetProperty("escrowId").GetGuid());
    }
}
