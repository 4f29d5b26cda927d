package server

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	list, err := s.svc.ListWebhooks(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Webhook]{Items: list})
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	hook, err := s.svc.GetWebhook(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.WebhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	hook, err := s.svc.CreateWebhook(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.WebhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	hook, err := s.svc.UpdateWebhook(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteWebhook(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	list, err := s.svc.ListDeliveries(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Notification]{Items: list})
	return nil
}
